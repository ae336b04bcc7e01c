"""The NaViT lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "nv_guide": (
        "**What you see:** NaViT's patch-n'-pack: images of different sizes and aspect ratios cut into patches and packed into one sequence, with the attention mask that keeps each image to itself. **The colour bar:** in the mask, a coloured cell means that row's token may attend to that column's token — only the blocks on the diagonal, one per image. **Try this:** raise the token dropout and see how many fewer tokens each image needs, while the prediction barely changes.",
        "**你看到的：** NaViT 的 patch-n'-pack：大小和宽高比不同的图片被切成 patch，打包进同一个序列，并用注意力掩码让每张图只看自己。**怎么读色标：** 掩码中有颜色的格子表示这一行的 token 可以关注这一列的 token——只有对角线上的块，每张图一块。**试一试：** 调高 token dropout，看每张图需要的 token 少了多少，而预测几乎不变。"),
    "nv_caption": ("One row of the mask is one token: it may attend only to tokens of its own image, the blocks on the diagonal. Hover for the token's image and position.",
        "掩码的一行对应一个 token：它只能关注同一张图像的 token，也就是对角线上的方块。悬停可以看到 token 所属的图像和位置。"),
    "tab_navit": ("NaViT", "NaViT"),
    "nv_help": (
        "**NaViT** (Dehghani et al., 2023) takes every image at its own aspect ratio and "
        "resolution: the patches of several images are **packed** into one sequence, and a "
        "**block-diagonal attention mask** lets a token attend only to tokens of its own image "
        "(never to padding). Positions are factorised: pos_h[row] + pos_w[col]. **Token dropout** "
        "keeps a random max(1, ⌊n·(1−p)⌋) of an image's n patches. Each image is pooled by its own "
        "attention-pooling query. Because of the mask, packing changes nothing: the page checks "
        "each image's packed logits against running it alone.",
        "**NaViT**（Dehghani 等，2023）按每张图像自己的宽高比和分辨率处理：把多张图像的 patch "
        "**打包**进同一个序列，并用**块对角注意力掩码**让每个 token 只关注同一图像的 token（绝不关注"
        "补齐位置）。位置编码是分解的：pos_h[行] + pos_w[列]。**token 丢弃**随机保留一张图像 n 个 patch "
        "中的 max(1, ⌊n·(1−p)⌋) 个。每张图像由自己的注意力池化查询汇总。由于有掩码，打包不会改变结果："
        "页面会把每张图像打包后的 logits 与单独运行的结果进行比较。"),
    "nv_examples": ("Example images (aspect ratios 1:3 … 3:1)", "示例图片（宽高比 1:3 … 3:1）"),
    "nv_include_page": ("Pack the page's image too (the one on the left)", "同时打包页面左侧当前的图片"),
    "nv_uploads": ("Add your own images (several at once)", "添加你自己的图片（可多选）"),
    "nv_tokens": ("Patches per image (about; aspect ratio kept)", "每张图像的 patch 数（约数，保持宽高比）"),
    "nv_dropout": ("Token dropout rate p", "token 丢弃率 p"),
    "nv_seed": ("Dropout seed", "丢弃随机种子"),
    "nv_sequence": ("Sequence whose mask is shown", "显示掩码的序列"),
    "nv_sequence_n": ("sequence {s}", "序列 {s}"),
    "nv_page_image": ("page image", "页面图片"),
    "nv_need_images": ("Pick at least one example or upload an image.", "请至少选择一张示例图片或上传一张图片。"),
    "nv_too_many": ("At most {n} images at once.", "一次最多 {n} 张图片。"),
    "nv_equal_ok": ("**Checked — Packed = separate:** max |logit(packed) − logit(alone)| = {d:.1e} (≤ {tol:.0e}) "
                    "over all images — the mask keeps the images apart.",
                    "**已验证——打包 = 单独运行：** 所有图像上 max |logit(打包) − logit(单独)| = {d:.1e}（≤ {tol:.0e}）"
                    "—— 掩码把各图像隔开了。"),
    "nv_equal_bad": ("**Warning — Packed ≠ separate:** max |Δlogit| = {d:.1e} (> {tol:.0e}).",
                     "**注意——打包 ≠ 单独运行：** max |Δlogit| = {d:.1e}（> {tol:.0e}）。"),
    "nv_summary": ("{n} images → {s} sequence(s) of at most {L} tokens · {util:.0%} of the token slots hold "
                   "image tokens (the rest is padding) · token dropout p = {drop:.2f}",
                   "{n} 张图像 → {s} 个序列（每个最多 {L} 个 token）· {util:.0%} 的位置是图像 token（其余为补齐）"
                   "· token 丢弃率 p = {drop:.2f}"),
    "nv_table_columns": ("| image | size → model input | patches | kept | sequence · slot | top-1 (packed) | "
                         "\|packed − alone\| |",
                         "| 图像 | 尺寸 → 模型输入 | patch 网格 | 保留 | 序列 · 槽位 | top-1（打包） | "
                         "\|打包 − 单独\| |"),
    "nv_panel": ("{i} · {name}<br>{h}×{w} patches, {kept}/{n} kept", "{i} · {name}<br>{h}×{w} 个 patch，保留 {kept}/{n}"),
    "nv_patch": ("patch", "patch"),
    "nv_kept": ("kept", "保留"),
    "nv_dropped": ("dropped", "丢弃"),
    "hover_nv_patch": ("patch (row %{customdata[0]}, col %{customdata[1]}) · %{customdata[4]}<br>"
                       "→ sequence %{customdata[2]}, position %{customdata[3]} (−1 = dropped)",
                       "patch（第 %{customdata[0]} 行，第 %{customdata[1]} 列）· %{customdata[4]}<br>"
                       "→ 序列 %{customdata[2]}，位置 %{customdata[3]}（−1 = 已丢弃）"),
    "fig_nv_patches": ("{n} images, each cut into {p}×{p} px patches at its own aspect ratio<br>dropped "
                       "patches dark (token dropout p = {drop:.2f})",
                       "{n} 张图像，各自按原宽高比切成 {p}×{p} 像素的 patch<br>丢弃的 patch 为深色（token 丢弃率 p = {drop:.2f}）"),
    "nv_padding": ("padding", "补齐"),
    "nv_image": ("image", "图像"),
    "hover_nv_token": ("sequence %{customdata[0]}, position %{customdata[1]}<br>image %{customdata[2]} "
                       "(%{customdata[6]}), slot %{customdata[3]}<br>patch (row %{customdata[4]}, col "
                       "%{customdata[5]})",
                       "序列 %{customdata[0]}，位置 %{customdata[1]}<br>图像 %{customdata[2]}"
                       "（%{customdata[6]}），槽位 %{customdata[3]}<br>patch（第 %{customdata[4]} 行，第 "
                       "%{customdata[5]} 列）"),
    "fig_nv_packing": ("Packing: {n} images greedily into {s} sequence(s)<br>(max {L} tokens, padded to "
                       "{length}) · {util:.0%} used",
                       "打包：{n} 张图像贪心地装入 {s} 个序列<br>（最多 {L} 个 token，补齐到 {length}）· 利用率 {util:.0%}"),
    "nv_position": ("position in the sequence (token slot)", "序列中的位置（token 槽）"),
    "nv_sequence_axis": ("sequence", "序列"),
    "hover_nv_mask": ("query token %{y} (image %{customdata[0]})<br>key token %{x} (image %{customdata[1]})"
                      "<br>may attend: %{customdata[2]}",
                      "query token %{y}（图像 %{customdata[0]}）<br>key token %{x}（图像 %{customdata[1]}）"
                      "<br>允许关注：%{customdata[2]}"),
    "fig_nv_mask": ("Sequence {s}: block-diagonal attention mask ({L}×{L})<br>images {images}; {pad} padding "
                    "tokens · coloured = may attend",
                    "序列 {s}：块对角注意力掩码（{L}×{L}）<br>图像 {images}；{pad} 个补齐 token · 有颜色 = 允许关注"),
    "nv_key": ("key token (attended to; −1 image = padding)", "key token（被关注的；图像 −1 = 补齐）"),
    "nv_query": ("query token (attending)", "query token（发出关注的）"),
}
