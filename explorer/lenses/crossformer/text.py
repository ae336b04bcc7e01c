"""The CrossFormer lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "cf_guide": (
        "**What you see:** CrossFormer's cross-scale embedding (several kernel sizes read each token) and its two group attentions: SDA groups neighbouring tokens, LDA groups tokens spread at a fixed interval across the image. **The colour bar:** the clicked token's weights over the members of its group sum to 1; tokens outside the group are blank. **Try this:** click the same token in an SDA block and in the LDA block after it: short-distance attention stays local, long-distance attention reaches across the picture.",
        '**你看到的：** CrossFormer 的跨尺度嵌入（几种卷积核大小共同读取每个 token）和两种分组注意力：SDA 把相邻的 token 分成一组，LDA 把按固定间隔分散在全图的 token 分成一组。**怎么读色标：** 被点击 token 对本组成员的权重之和为 1；组外的 token 留白。**试一试：** 在一个 SDA 块和它后面的 LDA 块里点击同一个 token：短距离注意力停在局部，长距离注意力跨越整张图。'),
    "cf_caption": ("The clicked token attends only to the members of its group (SDA: a square; LDA: spread out): their weights sum to 1, other tokens are blank. Hover for numbers.",
        "所点 token 只关注它所在组的成员（SDA：一个方块；LDA：分散开）：这些权重之和为 1，其他 token 为空白。悬停可以看到具体数值。"),
    "tab_crossformer": ("CrossFormer", "CrossFormer"),
    "cf_picker": ("Click a token: its groups and its attention", "点击一个 token：查看它所在的组和它的注意力"),
    "cf_fallback_short": (" → SDA (map ≤ G)", " → SDA（特征图 ≤ G）"),
    "cf_info_stage": ("**Stage {stage}:** {h}×{w} tokens of {px}×{px} px · group size G = {g} · "
                      "{heads} heads · blocks: {blocks}",
                      "**第 {stage} 阶段：** {h}×{w} 个 token，每个 {px}×{px} 像素 · 分组大小 G = {g} · "
                      "{heads} 个头 · 各块：{blocks}"),
    "cf_info_sda": ("**Block {block} · SDA (short-distance attention):** {n} groups, each an adjacent "
                    "{g}×{g} square of tokens ({gp}×{gp} px): attention stays local.",
                    "**块 {block} · SDA（短距离注意力）：** {n} 个组，每组是相邻的 {g}×{g} 个 token 组成的方块"
                    "（{gp}×{gp} 像素）：注意力只在局部。"),
    "cf_info_lda": ("**Block {block} · LDA (long-distance attention):** {n} groups of {g}×{g} tokens; a "
                    "group takes every I-th token, I = {ih}×{iw} tokens ({iph}×{ipw} px), so its members "
                    "are spread over the whole map.",
                    "**块 {block} · LDA（长距离注意力）：** {n} 个组，每组 {g}×{g} 个 token；每隔 I 个 token 取一个，"
                    "I = {ih}×{iw} 个 token（{iph}×{ipw} 像素），所以组内成员分布在整张特征图上。"),
    "cf_info_fallback": ("**Block {block} · LDA block run as SDA:** the map ({h}×{w}) is not larger than "
                         "G = {G}, so the group becomes {g}×{g} and one group spans the short side.",
                         "**块 {block} · LDA 块按 SDA 计算：** 特征图（{h}×{w}）不大于 G = {G}，"
                         "所以分组变为 {g}×{g}，一组就覆盖短边。"),
    "cf_info_padded": (" The map is padded with zeros to {hp}×{wp}; padded keys get −10⁶ before the softmax.",
                       " 特征图补零到 {hp}×{wp}；补零的 key 在 softmax 之前加 −10⁶。"),
    "cf_info_query": ("Query ({r},{c}): group {group}, slot {slot} in block {block} ({kind}).",
                      "查询 ({r},{c})：块 {block}（{kind}）中的第 {group} 组、第 {slot} 个位置。"),
    "cf_no_lda": ("Stage {stage} has only block {block} (SDA): no LDA block to compare here",
                  "第 {stage} 阶段只有块 {block}（SDA）：这里没有可对比的 LDA 块"),
    "cf_groups_marked": (" · ○ the query's group {g}", " · ○ 查询所在的第 {g} 组"),
    "fig_cf_attention": ("Block {block}: {kind} · group {group}<br>token ({r},{c}) · {head} · stage {stage}"
                         "<br>a group of {g}×{g} tokens, {spacing}",
                         "块 {block}：{kind} · 第 {group} 组<br>token ({r},{c}) · {head} · 第 {stage} 阶段"
                         "<br>每组 {g}×{g} 个 token，{spacing}"),
    "cf_scale_kernel": ("k = {k} ({px} px) · {ch} ch [{c0}–{c1}]", "k = {k}（{px} 像素）· {ch} 通道 [{c0}–{c1}]"),
    "cf_scale_padding": ("zero padding (outside the image)", "补零（图像之外）"),
    "cf_scale_image": ("image", "图像内"),
    "cf_scale_colorbar": ("smallest kernel reading here", "读取此处的最小卷积核"),
    "hover_cf_scale": ("x %{customdata[0]}–%{customdata[1]}, y %{customdata[2]}–%{customdata[3]} px "
                       "(%{customdata[5]})<br>read by:<br>%{customdata[4]}",
                       "x %{customdata[0]}–%{customdata[1]}，y %{customdata[2]}–%{customdata[3]} 像素"
                       "（%{customdata[5]}）<br>被以下卷积读取：<br>%{customdata[4]}"),
    "cf_layer_embed": ("patch embedding (image → stage 0)", "patch 嵌入（图像 → 第 0 阶段）"),
    "cf_layer_merge": ("patch merging (stage {a} → stage {b})", "patch 合并（第 {a} 阶段 → 第 {b} 阶段）"),
    "fig_cf_scale": ("Cross-scale embedding of stage {stage} · token ({r},{c})<br>{source}: {n} convs, "
                     "stride {stride} × {unit} px, footprints {kernels} px<br>outputs concatenated small → "
                     "large = {ch} channels · token = {tp}×{tp} px (dotted)",
                     "第 {stage} 阶段的跨尺度嵌入 · token ({r},{c})<br>{source}：{n} 个卷积，"
                     "步长 {stride} × {unit} 像素，覆盖 {kernels} 像素<br>输出按从小到大拼接 = {ch} 个通道 · "
                     "token = {tp}×{tp} 像素（虚线框）"),
    "cf_dpb_bias": ("dynamic position bias (DPB)", "动态位置偏置（DPB）"),
    "cf_no_bias": ("no position bias (zeros)", "无位置偏置（全为 0）"),
    "fig_cf_logit_split": ("Stage {stage} · block {block} · {kind} · group {group} ({n} tokens) · {head}"
                           "<br>logit = content + bias + mask → softmax; the query's row is outlined",
                           "第 {stage} 阶段 · 块 {block} · {kind} · 第 {group} 组（{n} 个 token）· {head}"
                           "<br>logit = 内容 + 偏置 + 掩码 → softmax；查询所在的行已框出"),
    "cf_split_no_padding": (" · no padding: the mask is 0", " · 无补零：掩码为 0"),
    "cf_split_padding": (" · padded to {hp}×{wp}: −10⁶ on padded keys", " · 补零到 {hp}×{wp}：补零的 key 为 −10⁶"),
    "cf_embed_title": ("**Cross-scale embedding** (read from the model's convolutions; footprint = kernel × "
                       "input unit, what one token reads directly):",
                       "**跨尺度嵌入**（从模型的卷积层读取；覆盖范围 = 卷积核 × 输入单元，即一个 token 直接读取的区域）："),
    "cf_embed_columns": ("| layer | kernel | stride | padding | in ch | out ch | channels | footprint |",
                         "| 层 | 卷积核 | 步长 | 填充 | 输入通道 | 输出通道 | 通道区间 | 覆盖范围 |"),
    "cf_help": (
        "**CrossFormer** (Wang et al., 2021) attends inside groups of $G\\times G$ tokens. **SDA** "
        "(even blocks) groups adjacent $G\\times G$ squares; **LDA** (odd blocks) groups the tokens "
        "$I = H/G$ apart, so one group samples the whole map. Where the map is $\\le G$ the block "
        "uses SDA with one group across. The logit is $q k^\\top/\\sqrt{d} + B + M$ with $B$ the "
        "dynamic position bias (an MLP of the offset $(\\Delta h, \\Delta w)$) and $M = -10^6$ on "
        "padded keys. The **cross-scale embedding** makes every token from convolutions with "
        "several kernels at one stride and concatenates their channels, small kernels first.",
        "**CrossFormer**（Wang 等，2021）在 $G\\times G$ 个 token 的组内计算注意力。**SDA**（偶数块）"
        "把相邻的 $G\\times G$ 方块分为一组；**LDA**（奇数块）把相隔 $I = H/G$ 的 token 分为一组，"
        "所以一组覆盖整张特征图。特征图 $\\le G$ 时改用 SDA，一组就覆盖短边。logit 为 "
        "$q k^\\top/\\sqrt{d} + B + M$，其中 $B$ 是动态位置偏置（以偏移 $(\\Delta h, \\Delta w)$ 为输入的"
        "多层感知机），$M$ 在补零的 key 上为 $-10^6$。**跨尺度嵌入**用同一步长、多种卷积核的卷积生成每个 "
        "token，并按从小到大的顺序拼接它们的通道。"),
}
