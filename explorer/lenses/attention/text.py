"""The attention lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "att_guide": (
        "**What you see:** the picture cut into patches, and how much one query token — the CLS token, or the patch you click — looks at every patch in the layer and head you choose. **The colour bar:** bright is a large share of that query's attention (its weights sum to 1), dark is almost none; the mark at 1/N is what an even spread would give. **Try this:** click a patch on the object, then move the layer slider from 0 to the last layer and watch the attention spread from the patch's neighbours to the whole object.",
        '**你看到的：** 图片被切成 patch；一个查询 token（CLS，或你点击的 patch）在所选层和头里对每个 patch 的关注程度。**怎么读色标：** 越亮表示分到该查询的注意力越多（一个查询的权重之和为 1），越暗越少；色标上的 1/N 是平均分配时的份额。**试一试：** 点击物体上的一个 patch，再把层滑块从 0 拖到最后一层，看注意力怎样从邻近的 patch 扩散到整个物体。'),
    "att_caption": ("Each colour is one patch's share of the query's attention: one query's weights sum to 1 over all its tokens, and the colour bar marks the equal share 1/N. Hover a patch for its number.",
        "颜色表示每个 patch 分到的查询注意力：一个查询对所有 token 的权重之和为 1，色标上标出了平均份额 1/N。把鼠标悬停在 patch 上可以看到具体数值。"),
    "uniform_mark": ("1/{n} uniform", "1/{n} 均匀"),
    "fixed_range": ("Colour range 0–1 (layers compare)", "色标范围固定为 0–1（各层可比）"),
    "no_classifier": ("This model has no classifier head (self-supervised backbone): no predictions.",
                      "该模型没有分类头（自监督骨干网络），因此没有预测结果。"),
    "tab_attention": ("Attention", "注意力"),
    "att_compare_info": ("Its layer, head and query follow this tab's: the layer at the same relative depth, the "
                         "same head (or the mean), the patch under the same point of the picture. E.g. supervised "
                         "ViT vs DINO, ViT vs DeiT, a model before vs after fine-tuning.",
                         "它的层、头和查询跟随本页的选择：相对深度相同的层、同一个头（没有则取平均）、图片上同一位置的 patch。"
                         "例如：监督 ViT 与 DINO、ViT 与 DeiT、微调前与微调后的模型。"),
    "att_compare_linked": ("**{model}**: layer {layer} of {layers} (layer {first_layer} of {first_layers} here), "
                           "{head}, query {query}.",
                           "**{model}**：第 {layer} 层（共 {layers} 层；对应本页共 {first_layers} 层中的第 {first_layer} 层），"
                           "{head}，查询 {query}。"),
    "reset_query": ("Query = CLS", "查询设为 CLS"),
    "layer": ("Layer", "层"),
    "fusion": ("Rollout head fusion", "Rollout 多头融合方式"),
    "colorscale": ("Colour scale", "色标"),
    "shape_table": ("Tensor shapes through the model, for this input",
                    "本次输入在模型中各阶段的张量形状"),
    "shape": ("shape", "形状"),
    "what": ("what happens", "说明"),
    "rollout_help": (
        "**Attention rollout** (Abnar & Zuidema, 2020): fuse the heads of each layer "
        "(mean; max and min are variants), add the residual connection as identity and "
        "renormalise the rows, $\\tilde A_l = \\mathrm{rownorm}(0.5\\,A_l + 0.5\\,I)$, then multiply "
        "the layers from first to last, $R = \\tilde A_L \\cdots \\tilde A_1$. The map shows the "
        "query token's row of $R$ over the patch tokens.",
        "**注意力 rollout**（Abnar & Zuidema, 2020）：先融合每层的多个头（取平均；max、min 为变体），"
        "把残差连接看作单位矩阵加进来并按行归一化，$\\tilde A_l = \\mathrm{rownorm}(0.5\\,A_l + 0.5\\,I)$，"
        "再从第一层乘到最后一层，$R = \\tilde A_L \\cdots \\tilde A_1$。图中显示查询 token 在 $R$ 中对应的行"
        "（只看 patch token）。"),
    "distance_help": (
        "**Mean attention distance** (ViT paper, Fig. 7 right): for each head, the attention-"
        "weighted pixel distance between a query patch and the key patches, averaged over the "
        "query patches. Low = local heads (like convolutions), high = global heads.",
        "**平均注意力距离**（ViT 论文图 7 右）：对每个头，计算查询 patch 与各 key patch 之间像素距离的"
        "注意力加权和，再对所有查询 patch 取平均。值小表示局部的头（类似卷积），值大表示全局的头。"),
    "pos_help": (
        "**Position-embedding similarity** (ViT paper, Fig. 7 left): tile (r, c) shows the cosine "
        "similarity between the learned position embedding of patch (r, c) and those of all "
        "patches, at the grid the model was trained on.",
        "**位置编码相似度**（ViT 论文图 7 左）：第 (r, c) 个小图显示 patch (r, c) 的可学习位置编码与所有 "
        "patch 位置编码的余弦相似度（在模型训练时的网格上）。"),
    "analysing": ("Analysing…", "分析中…"),
    "fig_query_attention": ("Layer {layer} · {head} · attention of {query}",
                            "第 {layer} 层 · {head} · {query} 的注意力"),
    "fig_rollout": ("Rollout ({fusion} of heads, {layers} layers) · {query}",
                    "注意力 rollout（多头{fusion}，{layers} 层）· {query}"),
    "fusion_mean": ("mean", "平均"),
    "fusion_max": ("max", "最大"),
    "fusion_min": ("min", "最小"),
    "fig_matrix": ("Layer {layer} · {head} · full attention matrix ({n}×{n} tokens)",
                   "第 {layer} 层 · {head} · 完整注意力矩阵（{n}×{n} 个 token）"),
    "fig_distance": ("Mean attention distance per head ({w}×{h} px input)",
                     "各头的平均注意力距离（输入 {w}×{h} 像素）"),
    "fig_pos_similarity": ("Cosine similarity of learned position embeddings ({rows}×{cols} grid)",
                           "可学习位置编码的余弦相似度（{rows}×{cols} 网格）"),
    "rollout_weight": ("rollout", "rollout 权重"),
    "cosine_similarity": ("cosine", "余弦相似度"),
    "key_token": ("key token (attended to)", "key token（被关注的）"),
    "query_token": ("query token (attending)", "query token（发出关注的）"),
    "hover_matrix": ("query %{y}<br>key %{x}<br>attention = %{z:.4f}",
                     "query %{y}<br>key %{x}<br>注意力 = %{z:.4f}"),
    "layer_depth": ("layer (network depth)", "层（网络深度）"),
    "distance_pixels": ("mean attention distance (pixels)", "平均注意力距离（像素）"),
    "one_head": ("one head", "单个头"),
    "mean_over_heads": ("mean over heads", "各头平均"),
    "hover_distance": ("layer %{x}, head %{customdata}<br>%{y:.1f} px",
                       "第 %{x} 层，头 %{customdata}<br>%{y:.1f} 像素"),
    "hover_distance_mean": ("layer %{x}, mean of heads<br>%{y:.1f} px", "第 %{x} 层，各头平均<br>%{y:.1f} 像素"),
    "query_row": ("query row", "查询行"),
    "query_col": ("query col", "查询列"),
    "key_row": ("key row", "key 行"),
    "key_col": ("key col", "key 列"),
    "pos_x_axis": ("tiles: query patch column · inside: key patch column",
                   "小图：查询 patch 所在列 · 小图内：key patch 所在列"),
    "pos_y_axis": ("tiles: query patch row · inside: key patch row", "小图：查询 patch 所在行 · 小图内：key patch 所在行"),
}
