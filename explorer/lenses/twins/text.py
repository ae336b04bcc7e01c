"""The Twins lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "tw_guide": (
        "**What you see:** Twins-SVT's two attentions: locally-grouped attention (LSA) inside small windows, and global sub-sampled attention (GSA) over a coarse summary of the whole map, plus its position generator. **The colour bar:** LSA's weights over the token's own window, or GSA's over the sub-sampled key cells; each sums to 1. **Try this:** click a token and step from an LSA block to the GSA block that follows it: the first looks only nearby, the second at every part of the image at once.",
        '**你看到的：** Twins-SVT 的两种注意力：在小窗口内的局部分组注意力（LSA），和在整张特征图粗略摘要上的全局下采样注意力（GSA），以及它的位置编码生成器。**怎么读色标：** LSA 是该 token 在自己窗口内的权重，GSA 是它在下采样后的 key 格子上的权重；各自之和为 1。**试一试：** 点击一个 token，从 LSA 块切到紧随其后的 GSA 块：前者只看附近，后者同时看到图像的每个部分。'),
    "tw_caption": ("LSA: the clicked token's weights over its own window; GSA: its weights over the sub-sampled key cells. Each sums to 1. Hover for numbers.",
        "LSA：所点 token 在它自己窗口内的权重；GSA：它在下采样后的 key 单元上的权重。两者各自之和为 1。悬停可以看到具体数值。"),
    "tab_twins": ("Twins", "Twins"),
    "tw_picker": ("Click a token: its window (LSA) and its view of the key grid (GSA)",
                  "点击一个 token：查看它所在的窗口（LSA）和它对子采样 key 网格的注意力（GSA）"),
    "tw_kind_lsa": ("LSA (local window)", "LSA（局部窗口）"),
    "tw_kind_gsa": ("GSA (global, sub-sampled keys)", "GSA（全局，子采样 key）"),
    "tw_window_id": ("LSA window", "LSA 窗口"),
    "tw_key_id": ("GSA key cell", "GSA key 单元"),
    "hover_tw_layout": ("token (row %{customdata[0]}, col %{customdata[1]})<br>LSA window %{customdata[2]}"
                        "<br>GSA key cell %{customdata[3]}",
                        "token（第 %{customdata[0]} 行，第 %{customdata[1]} 列）<br>LSA 窗口 %{customdata[2]}"
                        "<br>GSA key 单元 %{customdata[3]}"),
    "fig_tw_layout": ("Stage {stage}: {h}×{w} tokens of {px}×{px} px", "第 {stage} 阶段：{h}×{w} 个 {px}×{px} 像素的 token"),
    "tw_layout_lsa": ("LSA: {n} windows of {ws}×{ws} tokens ({px} px, solid)",
                      "LSA：{n} 个 {ws}×{ws} token 的窗口（{px} 像素，实线）"),
    "tw_layout_padded": ("zero-padded to {hp}×{wp}", "补零到 {hp}×{wp}"),
    "tw_layout_gsa": ("GSA: {kh}×{kw} keys, each sr×sr = {sr}×{sr} tokens ({px} px, dashed)",
                      "GSA：{kh}×{kw} 个 key，每个汇总 sr×sr = {sr}×{sr} 个 token（{px} 像素，虚线）"),
    "tw_layout_gsa_full": ("GSA with sr = 1: all {n} tokens are keys", "GSA（sr = 1）：全部 {n} 个 token 都是 key"),
    "fig_tw_lsa": ("Block {block} · LSA · token ({r},{c}) in window {window} ({ws}×{ws})<br>{head}",
                   "块 {block} · LSA · token ({r},{c}) 位于窗口 {window}（{ws}×{ws}）<br>{head}"),
    "fig_tw_gsa": ("Block {block} · GSA · token ({r},{c}) · {head}<br>over {kh}×{kw} sub-sampled keys "
                   "(each = {sr}×{sr} tokens, {cell} px)",
                   "块 {block} · GSA · token ({r},{c}) · {head}<br>对 {kh}×{kw} 个子采样 key 的注意力"
                   "（每个 = {sr}×{sr} 个 token，{cell} 像素）"),
    "hover_tw_key": ("key cell (row %{customdata[0]}, col %{customdata[1]}) = key #%{customdata[2]}"
                     "<br>attention = %{z:.4f}",
                     "key 单元（第 %{customdata[0]} 行，第 %{customdata[1]} 列）= 第 %{customdata[2]} 个 key"
                     "<br>注意力 = %{z:.4f}"),
    "fig_tw_peg": ("What the PEG adds, per stage<br>mean ‖DWConv(x)‖ / mean ‖x‖",
                   "各阶段 PEG 的贡献<br>平均 ‖DWConv(x)‖ / 平均 ‖x‖"),
    "tw_peg_ratio": ("‖PEG addition‖ / ‖tokens‖", "‖PEG 增量‖ / ‖token‖"),
    "tw_peg_ratio_short": ("ratio", "比值"),
    "hover_tw_peg": ("stage %{x}: %{customdata[0]}×%{customdata[1]} tokens<br>mean ‖DWConv(x)‖ = "
                     "%{customdata[2]:.3f}<br>mean ‖x‖ = %{customdata[3]:.3f}<br>ratio = %{y:.3f}",
                     "第 %{x} 阶段：%{customdata[0]}×%{customdata[1]} 个 token<br>平均 ‖DWConv(x)‖ = "
                     "%{customdata[2]:.3f}<br>平均 ‖x‖ = %{customdata[3]:.3f}<br>比值 = %{y:.3f}"),
    "fig_tw_peg_map": ("Stage {stage}: what the PEG adds to each token<br>(without it the tokens "
                       "change by {rel:.0%} on average)",
                       "第 {stage} 阶段：PEG 给每个 token 加上的量<br>（去掉它，token 平均改变 {rel:.0%}）"),
    "tw_no_peg": ("Stage {stage} has no PEG", "第 {stage} 阶段没有 PEG"),
    "tw_no_lsa": ("Stage {stage} of this model has no locally-grouped attention (PCPVT: GSA only)",
                  "该模型第 {stage} 阶段没有局部分组注意力（PCPVT 只有 GSA）"),
    "tw_no_gsa": ("This block has no GSA partner in stage {stage}", "第 {stage} 阶段中该块没有配对的 GSA 块"),
    "tw_info_stage": ("**Stage {stage}:** {h}×{w} tokens of {px}×{px} px · Twins-{variant} · blocks: {blocks}",
                      "**第 {stage} 阶段：** {h}×{w} 个 {px}×{px} 像素的 token · Twins-{variant} · 块：{blocks}"),
    "tw_info_lsa": ("**Block {block} · LSA:** {n} windows of {ws}×{ws} tokens ({px} px); attention stays "
                    "inside a window. Query ({r},{c}) is slot {slot} of window {window}.",
                    "**块 {block} · LSA：** {n} 个 {ws}×{ws} token 的窗口（{px} 像素），注意力只在窗口内。"
                    "查询 ({r},{c}) 是窗口 {window} 的第 {slot} 个位置。"),
    "tw_info_gsa": ("**Block {block} · GSA:** keys and values come from a conv with kernel = stride = "
                    "{sr} (then LayerNorm): {kh}×{kw} keys, so the attention is {n}×{m} instead of {n}×{n}.",
                    "**块 {block} · GSA：** key 和 value 来自核大小 = 步长 = {sr} 的卷积（再经 LayerNorm）："
                    "{kh}×{kw} 个 key，注意力矩阵为 {n}×{m} 而不是 {n}×{n}。"),
    "tw_shapes_title": ("**Shape through the model** (this image; the PEG rows are bold)",
                        "**张量形状在模型中的变化**（本图像；PEG 所在行加粗）"),
    "tw_shapes_columns": ("| module | output shape | what it does |", "| 模块 | 输出形状 | 作用 |"),
    "tw_shape_embed": ("patch embedding of stage {stage} (conv k = s, LayerNorm) → (tokens, channels)",
                       "第 {stage} 阶段的 patch 嵌入（卷积 k = s，LayerNorm）→（token 数，通道数）"),
    "tw_shape_lsa": ("block with LSA in {ws}×{ws} windows", "块：{ws}×{ws} 窗口内的 LSA"),
    "tw_shape_gsa": ("block with GSA, keys sub-sampled by sr = {sr} → {kh}×{kw}",
                     "块：GSA，key 按 sr = {sr} 子采样 → {kh}×{kw}"),
    "tw_shape_peg": ("⬅ **PEG**: x + DWConv3×3(x), after the stage's first block; adds {rel:.0%} of ‖x‖",
                     "⬅ **PEG**：x + DWConv3×3(x)，位于该阶段第一个块之后；增量为 ‖x‖ 的 {rel:.0%}"),
    "tw_shape_norm": ("final LayerNorm (then the mean over tokens)", "最后的 LayerNorm（之后对 token 取平均）"),
    "tw_shape_head": ("classifier", "分类头"),
    "tw_help": (
        "**Twins-SVT** (Chu et al., 2021) alternates two attentions. **LSA** (locally-grouped "
        "self-attention, even blocks) attends inside $w_s\\times w_s$ windows, like Swin without "
        "shifts (the map is zero-padded to whole windows). **GSA** (global sub-sampled attention, "
        "odd blocks) lets every token attend to the whole image through a few keys: a conv with "
        "kernel = stride = $sr$ summarises each $sr\\times sr$ square into one key/value. "
        "**Twins-PCPVT** uses GSA in every block. Position comes from the **PEG** (a depthwise "
        "$3\\times3$ conv added to the tokens after each stage's first block), not from a table, "
        "so any input size works.",
        "**Twins-SVT**（Chu 等，2021）交替使用两种注意力。**LSA**（局部分组自注意力，偶数块）在 "
        "$w_s\\times w_s$ 窗口内计算注意力，类似不做移位的 Swin（特征图补零到整数个窗口）。"
        "**GSA**（全局子采样注意力，奇数块）让每个 token 通过少量 key 关注整张图：核大小 = 步长 = "
        "$sr$ 的卷积把每个 $sr\\times sr$ 方块汇总成一个 key/value。**Twins-PCPVT** 每个块都用 GSA。"
        "位置信息来自 **PEG**（每个阶段第一个块之后加到 token 上的 $3\\times3$ 深度卷积），而不是位置"
        "编码表，所以任意输入尺寸都可以。"),
}
