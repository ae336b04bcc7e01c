"""The explanation lens's text in English and Simplified Chinese (``explorer.ui.i18n.t`` looks
every key up, in one table made of the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "ex_guide": (
        "**What you see:** several explanation methods for one class side by side — raw attention, rollout, GAE, Grad-CAM, AttnLRP and a random map — on the same image. **The colour bar:** bright patches matter most for the chosen class according to that method; the maps share one scale choice, so compare where they are bright, not their absolute numbers. **Try this:** press the faithfulness button and see which method's deletion curve falls fastest — a method that does no better than the random map is not explaining the model.",
        '**你看到的：** 同一张图上、针对同一个类别的几种解释方法并排显示：原始注意力、rollout、GAE、Grad-CAM、AttnLRP 和一张随机图。**怎么读色标：** 越亮的 patch 按该方法对所选类别越重要；各图使用同一种色标设置，应比较亮的位置，而不是绝对数值。**试一试：** 按下忠实度按钮，看哪种方法的删除曲线下降得最快——不比随机图好的方法并没有解释模型。'),
    "tab_explain": ("Explain", "解释"),
    "ex_help": (
        "**Attention is not explanation.** Attention says where a token looks, not which pixels made the "
        "model choose a class: the maps below are for the **target class** you pick, side by side, and "
        "the buttons measure which one is faithful on this very image.\n\n"
        "- **attention**: the last block's CLS row, mean of heads, $A_L[\\mathrm{CLS}]$ — class-blind.\n"
        "- **rollout** (Abnar & Zuidema 2020): $\\tilde A_l = \\mathrm{rownorm}(0.5A_l + 0.5I)$, "
        "$R = \\tilde A_L\\cdots\\tilde A_1$ — class-blind too.\n"
        "- **GAE** (Chefer et al. 2021): $R = I$; per block $\\bar A = \\mathbb E_h[(\\nabla A \\odot A)^+]$, "
        "$R \\leftarrow R + \\bar A R$, with $\\nabla A = \\partial y_c/\\partial A$ — attention weighted by "
        "how much it matters for class $c$.\n"
        "- **Grad-CAM** (Selvaraju et al. 2017, through the grad-cam package): the last block's LayerNorm "
        "output per patch, weighted by its mean gradient $w_k = \\mathbb E_{ij}\\,\\partial y_c/\\partial a^k_{ij}$, "
        "$\\mathrm{ReLU}(\\sum_k w_k a^k)$.\n"
        "- **AttnLRP** (Achtibat et al. 2024, lxt's rules for ViTs): the logit $y_c$ passed back as "
        "relevance, conserved layer by layer ($\\sum_i R_i^{(l)} = \\sum_j R_j^{(l+1)}$, less what biases take): "
        "ε-LRP on linear layers and residual sums, the identity rule on LayerNorm's $1/\\sigma$ and on GELU, and in "
        "attention relevance through the values only ($R_{v}$ by $A$ held fixed); the map is each patch's relevance "
        "at the patch embedding, **signed** (low values speak against the class).\n"
        "- **random**: a fixed random map, the baseline every method must beat.",
        "**注意力不等于解释。** 注意力说明一个 token 看向哪里，而不是哪些像素让模型选了某个类别：下面的图都是针对你选的"
        "**目标类别**并排显示的，按钮则在这张图片上测量哪种方法是忠实的。\n\n"
        "- **attention**：最后一个块的 CLS 行，各头平均，$A_L[\\mathrm{CLS}]$——与类别无关。\n"
        "- **rollout**（Abnar & Zuidema 2020）：$\\tilde A_l = \\mathrm{rownorm}(0.5A_l + 0.5I)$，"
        "$R = \\tilde A_L\\cdots\\tilde A_1$——同样与类别无关。\n"
        "- **GAE**（Chefer 等 2021）：$R = I$；每个块 $\\bar A = \\mathbb E_h[(\\nabla A \\odot A)^+]$，"
        "$R \\leftarrow R + \\bar A R$，其中 $\\nabla A = \\partial y_c/\\partial A$——按它对类别 $c$ 的重要性加权的注意力。\n"
        "- **Grad-CAM**（Selvaraju 等 2017，通过 grad-cam 包）：最后一个块 LayerNorm 在每个 patch 上的输出，"
        "用平均梯度 $w_k = \\mathbb E_{ij}\\,\\partial y_c/\\partial a^k_{ij}$ 加权，$\\mathrm{ReLU}(\\sum_k w_k a^k)$。\n"
        "- **AttnLRP**（Achtibat 等 2024，lxt 针对 ViT 的规则）：把 logit $y_c$ 作为相关性逐层往回传，并逐层守恒"
        "（$\\sum_i R_i^{(l)} = \\sum_j R_j^{(l+1)}$，偏置吸收的部分除外）：线性层和残差相加用 ε-LRP，LayerNorm 的 "
        "$1/\\sigma$ 与 GELU 用恒等规则，注意力中相关性只经过 value（$A$ 视为常数）；图是每个 patch 在 patch 嵌入处的相关性，"
        "**有正负**（低值表示不利于该类别）。\n"
        "- **random**：固定的随机图，每种方法都必须胜过的基线。"),
    "ex_windowed": ("Swin attends within windows: no whole-image attention, rollout or GAE, and AttnLRP's rules "
                    "here follow the ViT's layers; Grad-CAM runs on its last stage (one cell per last-stage token).",
                    "Swin 在窗口内做注意力：没有整张图像上的 attention、rollout 或 GAE，这里 AttnLRP 的规则按 ViT 的层编写；"
                    "Grad-CAM 作用于它的最后一个阶段（每个格子是最后一个阶段的一个 token）。"),
    "ex_lrp_other": ("AttnLRP is not shown for this model: its rules here follow timm's plain ViT (LayerNorm, "
                     "standard attention without q/k norms, an MLP, the CLS token classifying), and this model's "
                     "layers differ.",
                     "此模型不显示 AttnLRP：这里的规则按 timm 的标准 ViT 编写（LayerNorm、没有 q/k 归一化的标准注意力、MLP、"
                     "由 CLS token 分类），而此模型的层与之不同。"),
    "class_n": ("class {n}", "第 {n} 类"),
    "ex_target": ("Target class", "目标类别"),
    "ex_target_info": ("The top-5, or type any class name", "Top-5 之一，或输入任意类别名"),
    "ex_measure": ("Measure faithfulness (deletion / insertion)", "测量忠实度（删除 / 插入）"),
    "ex_sanity": ("Sanity check (randomise the blocks)", "合理性检查（随机化各块）"),
    "ex_steps": ("Steps S", "步数 S"),
    "method_attention": ("attention", "attention（注意力）"),
    "method_rollout": ("rollout", "rollout"),
    "method_gae": ("GAE", "GAE"),
    "method_gradcam": ("Grad-CAM", "Grad-CAM"),
    "method_attnlrp": ("AttnLRP", "AttnLRP"),
    "method_random": ("random", "random（随机）"),
    "ex_compare_info": ("Its maps explain the same class where it has one of that name (or the same index among as "
                        "many classes), else its own top class. E.g. ViT vs DeiT, a model before vs after fine-tuning.",
                        "它的图解释同一个类别（有同名类别时；或类别数相同时的同一编号），否则解释它自己的首位类别。"
                        "例如：ViT 与 DeiT、微调前与微调后的模型。"),
    "ex_compare_line": ("**{model}**: the maps for “{name}” (class {index}; {how}).",
                        "**{model}**：“{name}” 的相关性图（第 {index} 类；{how}）。"),
    "ex_compare_same": ("the same class as the first model's", "与第一个模型相同的类别"),
    "ex_compare_own_top": ("it has no class of that name: its own top class", "它没有同名类别：取它自己的首位类别"),
    "fig_ex_maps": ("Relevance for “{target}” (each map scaled to 0–1)", "“{target}” 的相关性（每张图缩放到 0–1）"),
    "ex_scaled": ("relevance (0–1 per map)", "相关性（每张图 0–1）"),
    "hover_ex": ("%{meta}<br>patch (row %{customdata[0]}, col %{customdata[1]}) · token #%{customdata[2]}<br>"
                 "relevance %{customdata[3]:.4g} (scaled %{z:.3f})<extra></extra>",
                 "%{meta}<br>patch（第 %{customdata[0]} 行，第 %{customdata[1]} 列）· token #%{customdata[2]}<br>"
                 "相关性 %{customdata[3]:.4g}（缩放后 %{z:.3f}）<extra></extra>"),
    "fig_ex_curves": ("Deletion and insertion for “{target}” ({steps} steps)", "“{target}” 的删除与插入曲线（{steps} 步）"),
    "ex_deletion": ("deletion: most relevant patches removed (lower AUC is better)", "删除：先去掉最相关的 patch（AUC 越低越好）"),
    "ex_insertion": ("insertion: most relevant patches restored (higher AUC is better)", "插入：先恢复最相关的 patch（AUC 越高越好）"),
    "ex_x": ("x (px)", "x（像素）"),
    "ex_y": ("y (px)", "y（像素）"),
    "ex_deletion_short": ("deletion", "删除"),
    "ex_insertion_short": ("insertion", "插入"),
    "ex_fraction": ("share of patches", "patch 的比例"),
    "ex_probability": ("probability of the target", "目标类别的概率"),
    "hover_ex_curve": ("%{meta}<br>%{x:.0%} of patches · p = %{y:.3f}<extra></extra>",
                       "%{meta}<br>%{x:.0%} 的 patch · p = %{y:.3f}<extra></extra>"),
    "ex_verdict": ("On this image, **{deletion}** deletes fastest (deletion AUC {d:.3f}) and **{insertion}** inserts "
                   "fastest (insertion AUC {i:.3f}). The random map: {rd:.3f} / {ri:.3f}.",
                   "在这张图片上，**{deletion}** 删除得最快（删除 AUC {d:.3f}），**{insertion}** 插入得最快（插入 AUC {i:.3f}）。"
                   "随机图：{rd:.3f} / {ri:.3f}。"),
    "fig_ex_sanity": ("Sanity check: each map vs the trained model's, blocks randomised from the last",
                      "合理性检查：每张图与训练好的模型的图相比，从最后一个块开始随机化"),
    "ex_randomised": ("blocks randomised (from the last)", "随机化的块数（从最后一个开始）"),
    "ex_spearman": ("Spearman rank correlation", "Spearman 秩相关"),
    "hover_ex_sanity": ("%{meta}<br>%{x} blocks randomised · ρ = %{y:.3f}<extra></extra>",
                        "%{meta}<br>随机化 %{x} 个块 · ρ = %{y:.3f}<extra></extra>"),
    "ex_flat": ("**{methods}** hardly changed (ρ ≥ 0.9 with every block randomised): such a map does not explain "
                "the model.", "**{methods}** 几乎没有变化（所有块都随机化后 ρ 仍 ≥ 0.9）：这样的图并没有在解释模型。"),
    "ex_changed": ("Every map changed as the blocks were randomised (ρ < 0.9 with all of them random).",
                   "随着各块被随机化，每张图都变了（全部随机化后 ρ < 0.9）。"),
    "ex_press_measure": ("Press the button to measure the maps on this image.", "按下按钮，在这张图片上测量这些图。"),
    "ex_target_line": ("**Target:** {name} (class {index}, p = {p:.3f})", "**目标：** {name}（第 {index} 类，p = {p:.3f}）"),
}
