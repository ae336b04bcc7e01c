"""The DINO lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "dn_guide": (
        "**What you see:** the CLS token's attention in the last block of a self-supervised DINO model, head by head — it finds the object without ever being given a label — and, further down, the patch features' PCA and token norms. **The colour bar:** bright patches get a large share of the CLS token's attention (one head's weights sum to 1 with the prefix tokens); the threshold keeps the patches that hold that share of the mass. **Try this:** move the threshold and compare the masks of the heads, then pick a second model to compare with: supervised attention is usually far less clean.",
        '**你看到的：** 自监督 DINO 模型最后一个块里 CLS token 的注意力，逐个头显示——它从未见过标签却能找到物体；往下是 patch 特征的 PCA 和 token 范数。**怎么读色标：** 越亮的 patch 分到的 CLS 注意力越多（一个头的权重连同前缀 token 之和为 1）；阈值保留占这部分注意力质量的 patch。**试一试：** 移动阈值，比较各个头的掩码；再选第二个模型来对比：监督训练的注意力通常没有这么干净。'),
    "dn_caption": ("A head's map is the CLS token's attention over the patches in the last block: the weights of that one query sum to 1 (with the prefix tokens). Hover for numbers.",
        "每个头的图是最后一块中 CLS token 对各 patch 的注意力：这一个查询的权重（连同前缀 token）之和为 1。悬停可以看到具体数值。"),
    "preprocessing": ("What was done to the image", "图像预处理步骤"),
    "tab_dino": ("DINO", "DINO"),
    "dn_help": (
        "**DINO** (Caron et al., 2021) trains a ViT with no labels: a student network learns to give "
        "the same output as a momentum teacher for different crops of one image. Its last block's "
        "attention from the **CLS token** to the patches outlines objects. Shown here: that attention "
        "per head, `attn[0, :, 0, prefix:]` (exact softmax, at the image's own aspect ratio with "
        "*Keep aspect ratio*). **Threshold** (the official `visualize_attention.py`): per head, sort "
        "the weights ascending, divide by their sum, take the cumulative sum and keep the patches "
        "where it exceeds $1 - t$ — the fewest patches that hold more than a share $t$ of the head's "
        "attention — then upsample ×p (nearest). Moving $t$ only redraws; the model does not run again.",
        "**DINO**（Caron 等，2021）不用标签训练 ViT：学生网络要对同一张图像的不同裁剪给出与动量教师网络"
        "相同的输出。它最后一个块中 **CLS token** 对各 patch 的注意力能勾勒出物体轮廓。这里显示的就是每个头"
        "的这份注意力 `attn[0, :, 0, prefix:]`（精确的 softmax；选“保持宽高比”时按图像自己的宽高比）。"
        "**阈值**（官方 `visualize_attention.py` 的做法）：对每个头，把权重从小到大排序，除以总和，求累积和，"
        "保留累积和大于 $1 - t$ 的 patch——也就是占该头注意力超过 $t$ 的最少的 patch——再最近邻放大 p 倍。"
        "拖动 $t$ 只会重绘，不会重新运行模型。"),
    "dn_threshold": ("Threshold t (share of each head's attention the mask keeps)",
                     "阈值 t（掩码保留的每个头注意力的比例）"),
    "dn_compare": ("Compare with (same image, side by side)", "对比模型（同一张图，并排显示）"),
    "dn_compare_weights": ("Compared model", "对比模型"),
    "dn_overlay_head": ("Head on the large map", "大图显示的头"),
    "dn_cls_attention": ("CLS → patch", "CLS → patch"),
    "dn_head_panel": ("head {h} · {share:.0%} on patches", "头 {h} · {share:.0%} 落在 patch 上"),
    "hover_dn_head": ("head {h} · patch (row %{{customdata[0]}}, col %{{customdata[1]}})<br>token "
                      "#%{{customdata[2]}}<br>attention = %{{z:.4f}}",
                      "头 {h} · patch（第 %{{customdata[0]}} 行，第 %{{customdata[1]}} 列）<br>token "
                      "#%{{customdata[2]}}<br>注意力 = %{{z:.4f}}"),
    "fig_dn_heads": ("Block {block} (the last) · CLS attention over {rows}×{cols} patches of {p} px, per head"
                     "<br>{heads} heads on one colour scale",
                     "第 {block} 块（最后一块）· CLS 对 {rows}×{cols} 个 {p} 像素 patch 的注意力，逐头显示"
                     "<br>{heads} 个头共用一个色标"),
    "fig_dn_overlay": ("Block {block} (the last) · {head} · CLS attention over the image<br>{share:.0%} "
                       "of it on patches, the rest on the prefix tokens",
                       "第 {block} 块（最后一块）· {head} · CLS 注意力叠加在图像上<br>其中 {share:.0%} "
                       "落在 patch 上，其余落在前缀 token 上"),
    "dn_inside": ("in the mask", "在掩码内"),
    "dn_outside": ("outside the mask", "在掩码外"),
    "hover_dn_mask": ("head {h} · patch (row %{{customdata[0]}}, col %{{customdata[1]}})<br>attention = "
                      "%{{customdata[2]:.4f}}<br>stronger patches hold %{{customdata[3]:.1%}}<br>{where}",
                      "头 {h} · patch（第 %{{customdata[0]}} 行，第 %{{customdata[1]}} 列）<br>注意力 = "
                      "%{{customdata[2]:.4f}}<br>更强的 patch 共占 %{{customdata[3]:.1%}}<br>{where}"),
    "dn_all_heads": ("all {n} heads<br>overlaid", "全部 {n} 个头<br>叠加显示"),
    "dn_mask_panel": ("head {h}<br>{k}/{n} patches hold {mass:.0%}", "头 {h}<br>{n} 个中的 {k} 个 patch 占 {mass:.0%}"),
    "fig_dn_masks": ("Threshold t = {t:.2f}: per head, the fewest patches holding over {pct:.0%} of its CLS "
                     "attention<br>sort, divide by the sum, cumulative sum > 1 − t, unsort; upsampled ×{p} nearest",
                     "阈值 t = {t:.2f}：每个头保留占其 CLS 注意力超过 {pct:.0%} 的最少 patch<br>"
                     "排序、除以总和、累积和 > 1 − t、还原顺序；最近邻放大 {p} 倍"),
    "dn_compare_mean": ("{model}<br>mean of {n} heads", "{model}<br>{n} 个头的平均"),
    "dn_compare_masks": ("masks at t = {t:.2f}<br>together {area:.0%} of the patches",
                         "t = {t:.2f} 的掩码<br>合起来占 {area:.0%} 的 patch"),
    "hover_dn_mean": ("patch (row %{customdata[0]}, col %{customdata[1]}) · token #%{customdata[2]}<br>"
                      "mean attention = %{z:.4f}",
                      "patch（第 %{customdata[0]} 行，第 %{customdata[1]} 列）· token #%{customdata[2]}<br>"
                      "平均注意力 = %{z:.4f}"),
    "fig_dn_compare": ("Same image, two models: last-block CLS attention and masks (t = {t:.2f})<br>the DINO "
                       "paper (Fig. 4) finds self-supervised masks follow objects better than supervised ones",
                       "同一张图、两个模型：最后一块的 CLS 注意力与掩码（t = {t:.2f}）<br>DINO 论文（图 4）"
                       "发现自监督模型的掩码比有监督模型更贴合物体"),
    "dn_info": ("**{model}** · block {block} of {depth} (the last) · {heads} heads · {rows}×{cols} patches "
                "of {p} px · input {w}×{h} px",
                "**{model}** · 共 {depth} 块中的第 {block} 块（最后一块）· {heads} 个头 · {rows}×{cols} 个 "
                "{p} 像素的 patch · 输入 {w}×{h} 像素"),
    "dn_not_dino": ("This model was not trained with DINO: compare its maps with a DINO model's.",
                    "该模型不是用 DINO 训练的：可以把它的注意力图与 DINO 模型的对比。"),
    "dn_table_columns": ("| head | patches in the mask (t = {t:.2f}) | attention in the mask | CLS → patches |",
                         "| 头 | 掩码内的 patch（t = {t:.2f}） | 掩码内的注意力 | CLS → patch |"),
    "dn_mean_row": ("mean", "平均"),
    "dn_crops_help": (
        "**Multi-crop** (DINO's `DataAugmentationDINO`): each training image becomes 2 **global** views "
        "(RandomResizedCrop with scale 0.4–1 of the image, resized to 224 px) that go to the **teacher** "
        "and the student, and N **local** views (scale 0.05–0.4, 96 px) that go to the **student only**. "
        "The student must match the teacher's output for a global view from every other view: "
        "local-to-global correspondence. Each view is flipped horizontally with probability ½. "
        "Seeded; no model runs here (colour jitter, blur and solarisation are left out: they change "
        "colours, not boxes).",
        "**多裁剪**（DINO 的 `DataAugmentationDINO`）：每张训练图像生成 2 个**全局**视图（RandomResizedCrop，"
        "面积占原图 0.4–1，缩放到 224 像素），同时送给**教师**和学生；以及 N 个**局部**视图（面积 0.05–0.4，"
        "96 像素），**只送给学生**。学生要让每个其他视图的输出与教师对全局视图的输出一致：即“局部到全局”的"
        "对应。每个视图以 ½ 的概率水平翻转。使用固定随机种子；这里不运行模型（省略了颜色抖动、模糊和"
        "曝光反转：它们只改变颜色，不改变裁剪框）。"),
    "dn_n_local": ("Local crops N", "局部裁剪数 N"),
    "dn_seed": ("Crop seed", "裁剪随机种子"),
    "dn_crop_global": ("global", "全局"),
    "dn_crop_local": ("local", "局部"),
    "dn_yes": ("yes", "是"),
    "dn_no": ("no", "否"),
    "dn_to_teacher": ("teacher + student", "教师 + 学生"),
    "dn_to_student": ("student only", "仅学生"),
    "dn_legend_global": ("global crop (scale 0.4–1, 224 px) → teacher + student",
                         "全局裁剪（面积 0.4–1，224 像素）→ 教师 + 学生"),
    "dn_legend_local": ("local crop (scale 0.05–0.4, 96 px) → student only",
                        "局部裁剪（面积 0.05–0.4，96 像素）→ 仅学生"),
    "dn_crop_hover": ("<b>{name}</b> · {kind} crop → {to}<br>box x {left}, y {top}, {w}×{h} px<br>"
                      "{area:.1%} of the image · aspect w/h {ratio:.2f}<br>resized to {size}×{size} px · "
                      "flipped: {flip}",
                      "<b>{name}</b> · {kind}裁剪 → {to}<br>裁剪框 x {left}，y {top}，{w}×{h} 像素<br>"
                      "占图像 {area:.1%} · 宽高比 {ratio:.2f}<br>缩放到 {size}×{size} 像素 · 翻转：{flip}"),
    "fig_dn_crops": ("Multi-crop boxes on the {w}×{h} px image (seed {seed}): 2 global + {n} local<br>"
                     "RandomResizedCrop + horizontal flip, as in main_dino.py",
                     "{w}×{h} 像素图像上的多裁剪框（种子 {seed}）：2 个全局 + {n} 个局部<br>"
                     "RandomResizedCrop + 水平翻转，与 main_dino.py 相同"),
    "dn_x_image": ("x (pixels of the image)", "x（原图像素）"),
    "dn_y_image": ("y (pixels of the image)", "y（原图像素）"),
    "dn_view_hover": ("<b>{name}</b> · {kind} view, {size}×{size} px<br>flipped: {flip}<br>→ {to}",
                      "<b>{name}</b> · {kind}视图，{size}×{size} 像素<br>翻转：{flip}<br>→ {to}"),
    "fig_dn_views": ("What the networks see: the teacher gets the {g} global views ({gs} px),<br>the student "
                     "all {total} ({n} local views at {ls} px); ↔ = flipped",
                     "网络看到的输入：教师只得到 {g} 个全局视图（{gs} 像素），<br>学生得到全部 {total} 个"
                     "（其中 {n} 个局部视图为 {ls} 像素）；↔ = 已翻转"),
    "dn_x_view": ("x (pixels of the resized views)", "x（缩放后视图的像素）"),
    "dn_y_view": ("y (pixels of the resized views)", "y（缩放后视图的像素）"),
    "dn_features_help": (
        "**The tokens themselves.** Left: the DINOv2 paper's picture — the patch features (after the last "
        "LayerNorm) projected on their first principal component, cut at the threshold to keep the foreground, "
        "then a PCA of the foreground alone whose first three components are its red, green and blue: parts "
        "that look alike to the model get alike colours. Middle: each patch token's norm at the last block's "
        "output; × marks the high-norm tokens (above 2× the median), where Darcet et al. found ViTs store "
        "global information. Right: the CLS attention. The second row is the model picked for comparison above: "
        "try DINOv2 with registers against DINOv2 without.",
        "**token 本身。** 左：DINOv2 论文的图——把 patch 特征（最后一个 LayerNorm 之后）投影到第一主成分上，按阈值切出前景，"
        "再只对前景做 PCA，前三个主成分分别作为红、绿、蓝：模型看来相似的部分颜色也相似。中：每个 patch token 在最后一个块"
        "输出处的范数；× 标出高范数 token（超过中位数的 2 倍），Darcet 等发现 ViT 在这些 token 中存放全局信息。右：CLS 注意力"
        "。第二行是上面选来对比的模型：试试带寄存器（register）和不带寄存器的 DINOv2 对比。"),
    "dn_pca_threshold": ("PCA foreground threshold (first component, 0–1)", "PCA 前景阈值（第一主成分，0–1）"),
    "fig_dn_features": ("Block {block}'s tokens: DINOv2 PCA (foreground: first component > {t:.2f}), token norms, "
                        "CLS attention", "第 {block} 块的 token：DINOv2 PCA（前景：第一主成分 > {t:.2f}）、token 范数、CLS 注意力"),
    "dn_pca_panel": ("{model}<br>PCA → RGB ({k} of {n} patches foreground)",
                     "{model}<br>PCA → RGB（{n} 个 patch 中 {k} 个为前景）"),
    "dn_norm_panel": ("token norms ({k} high-norm ×)", "token 范数（{k} 个高范数 ×）"),
    "dn_token_norm": ("‖token‖", "‖token‖（范数）"),
    "dn_attn_panel": ("CLS attention (mean of {n} heads)", "CLS 注意力（{n} 个头的平均）"),
    "dn_high_norm": ("high-norm token (> 2× median)", "高范数 token（> 中位数的 2 倍）"),
    "hover_dn_pca": ("patch (row %{customdata[0]}, col %{customdata[1]}) · token #%{customdata[2]}<br>"
                     "first component %{z:.3f} · %{text}",
                     "patch（第 %{customdata[0]} 行，第 %{customdata[1]} 列）· token #%{customdata[2]}<br>"
                     "第一主成分 %{z:.3f} · %{text}"),
    "dn_foreground": ("foreground", "前景"),
    "dn_background": ("background", "背景"),
    "hover_dn_norm": ("patch (row %{customdata[0]}, col %{customdata[1]}) · token #%{customdata[2]}<br>"
                      "‖token‖ = %{z:.2f}",
                      "patch（第 %{customdata[0]} 行，第 %{customdata[1]} 列）· token #%{customdata[2]}<br>"
                      "‖token‖ = %{z:.2f}"),
    "dn_norms_line": ("**{k} of {n} patch tokens** ({share:.1%}) have a norm above 2× the median ({median:.1f}); "
                      "the largest is {top:.1f}.", "**{n} 个 patch token 中有 {k} 个**（{share:.1%}）的范数超过中位数"
                      "（{median:.1f}）的 2 倍；最大为 {top:.1f}。"),
    "dn_registers_line": ("Its {r} registers have norms {norms}; the CLS token gives them {share:.1%} of its "
                          "attention (mean of heads).", "它的 {r} 个寄存器的范数为 {norms}；CLS token 把 {share:.1%} 的"
                          "注意力（各头平均）给了它们。"),
    "dn_no_registers": ("This model has no registers (Darcet et al. add a few extra tokens, e.g. "
                        "vit_small_patch14_reg4_dinov2, and the high-norm tokens move there).",
                        "此模型没有寄存器（Darcet 等增加几个额外的 token，例如 vit_small_patch14_reg4_dinov2，"
                        "高范数 token 就转移到那里）。"),
}
