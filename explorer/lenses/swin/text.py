"""The Swin lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "swin_guide": (
        "**What you see:** how Swin splits the tokens into windows, how the shifted blocks roll the map so windows cross the old borders, the mask that keeps rolled-in regions apart, and the clicked token's attention inside its window. **The colour bar:** inside the window the weights sum to 1 (bright = attended); cells outside the window stay blank because the token cannot see them at all. **Try this:** click a token near the bottom-right corner and switch between an even (W-MSA) and an odd (SW-MSA) block: the window moves and the mask cuts it into regions.",
        '**你看到的：** Swin 如何把 token 分到窗口里，移位块如何循环移动特征图让窗口跨过原来的边界，隔开移入区域的掩码，以及被点击 token 在窗口内的注意力。**怎么读色标：** 窗口内的权重之和为 1（越亮关注越多）；窗口外的格子留白，因为这个 token 根本看不到那里。**试一试：** 点击右下角附近的 token，在偶数块（W-MSA）和奇数块（SW-MSA）之间切换：窗口移动了，掩码把它切成几个区域。'),
    "swin_caption": ("Coloured cells are the clicked token's attention weights: inside its window they sum to 1; everything outside the window is blank, because the token cannot see there. Hover for numbers.",
        "着色的格子是所点 token 的注意力权重：在它所在的窗口内之和为 1；窗口外是空白，因为该 token 看不到那里。悬停可以看到具体数值。"),
    "tab_swin": ("Swin windows", "Swin 窗口"),
    "swin_picker": ("Click a token: its window and its attention", "点击一个 token：查看它所在的窗口和注意力"),
    "swin_query": ("**Query token:** ({r},{c}) of stage {stage} ({h}×{w} tokens) · window {window}, slot {slot}",
                   "**查询 token：** 第 {stage} 阶段（{h}×{w} 个 token）的 ({r},{c}) · 窗口 {window}，位置 {slot}"),
    "swin_wrap_leak": (
        "**Warning:** at this input size timm pads the map by ({ph}, {pw}) tokens *after* the roll, so the mask "
        "regions no longer match the wrapped rows/columns exactly: some wrapped tokens can attend to "
        "far-away ones. This is what the model computes (the official Swin never pads here).",
        "**注意：** 在这个输入尺寸下，timm 在循环移位*之后*补零 ({ph}, {pw}) 个 token，掩码区域不再与绕回的行/列完全对齐："
        "部分绕回的 token 会关注到图像中相距很远的 token。这就是模型实际的计算（官方 Swin 在此处不补零）。"),
    "fig_swin_windows": ("Stage {stage} · block {block}: {kind}<br>{n} windows of {ws} tokens, shift {s}",
                         "第 {stage} 阶段 · 块 {block}：{kind}<br>{n} 个 {ws} 窗口，移位 {s}"),
    "window_id": ("window", "窗口编号"),
    "region_id": ("region id", "区域编号"),
    "shift_step1": ("① before the roll", "① 移位之前"),
    "shift_step2": ("② roll by (−{sh}, −{sw}): 9 regions", "② 循环移位 (−{sh}, −{sw})：9 个区域"),
    "shift_step3": ("③ {n} windows, masked inside", "③ {n} 个窗口，窗口内加掩码"),
    "shift_step4": ("④ roll back by (+{sh}, +{sw})", "④ 反向移位 (+{sh}, +{sw})"),
    "hover_shift": ("token from (row %{customdata[0]}, col %{customdata[1]})<br>region %{customdata[2]} · window %{customdata[3]}",
                    "来自 (第 %{customdata[0]} 行, 第 %{customdata[1]} 列) 的 token<br>区域 %{customdata[2]} · 窗口 %{customdata[3]}"),
    "fig_shift_steps": ("Cyclic shift step by step: window {ws}, shift ({sh}, {sw}), {H}×{W} tokens",
                        "循环移位分步演示：窗口 {ws}，移位 ({sh}, {sw})，{H}×{W} 个 token"),
    "shift_padding": (" · padded by ({ph}, {pw}) after the roll (timm)", " · 移位后补零 ({ph}, {pw})（timm 的做法）"),
    "mask_value": ("mask", "掩码"),
    "hover_mask": ("query slot %{y} (region %{customdata[0]})<br>key slot %{x} (region %{customdata[1]})<br>mask = %{z:.0f}",
                   "query 位置 %{y}（区域 %{customdata[0]}）<br>key 位置 %{x}（区域 %{customdata[1]}）<br>掩码 = %{z:.0f}"),
    "fig_mask": ("Mask of window {window}<br>stage {stage} · block {block} · {n}×{n}: 0 or −100",
                 "窗口 {window} 的注意力掩码<br>第 {stage} 阶段 · 块 {block} · {n}×{n}：0 或 −100"),
    "fig_mask_none": ("Window {window}: no mask<br>stage {stage} · block {block} is a regular block",
                      "窗口 {window}：没有掩码<br>第 {stage} 阶段 · 块 {block} 是常规块"),
    "hover_slot_pair": ("query %{y} → key %{x}<br>%{z:.3f}", "query %{y} → key %{x}<br>%{z:.3f}"),
    "fig_swin_attention": ("Block {block}: {kind}<br>token ({r},{c}) · {head} · stage {stage}",
                           "块 {block}：{kind}<br>token ({r},{c}) · {head} · 第 {stage} 阶段"),
    "swin_pad_weight": (" · {w:.1%} on padding", " · {w:.1%} 落在补零 token 上"),
    "content_logit": ("content q·kᵀ·scale", "内容项 q·kᵀ·scale"),
    "content_logit_cosine": ("content τ·cos(q, k)", "内容项 τ·cos(q, k)"),
    "cpb_bias": ("bias 16·σ(CPB)", "偏置 16·σ(CPB)"),
    "fig_logit_split": ("Stage {stage} · block {block} · window {window} · {head}: logit = content + bias + mask → softmax",
                        "第 {stage} 阶段 · 块 {block} · 窗口 {window} · {head}：logit = 内容 + 偏置 + 掩码 → softmax"),
    "swin_help": (
        "**Shifted windows** (Swin): attention is computed inside non-overlapping windows; every "
        "second block rolls the map by half a window, $(-\\lfloor ws/2 \\rfloor, -\\lfloor ws/2 \\rfloor)$, so "
        "windows straddle the previous borders. Tokens rolled around the edge land next to "
        "tokens that are far away in the image, so the mask adds −100 between different regions "
        "(ids 0–8). The logit is $q k^\\top/\\sqrt{d} + B + M$ with $B$ the relative position bias.",
        "**移位窗口**（Swin）：注意力只在互不重叠的窗口内计算；每隔一个块把特征图循环移位半个窗口 "
        "$(-\\lfloor ws/2 \\rfloor, -\\lfloor ws/2 \\rfloor)$，让窗口跨过上一层的边界。绕到边缘另一侧的 token 会和图像中"
        "相距很远的 token 挨在一起，所以掩码在不同区域（编号 0–8）之间加 −100。logit 为 "
        "$q k^\\top/\\sqrt{d} + B + M$，其中 $B$ 是相对位置偏置。"),
}
