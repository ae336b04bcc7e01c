"""English and Simplified Chinese text for the page and the figures.

One table, keyed by short names; ``t(key, lang, **fields)`` formats an entry. The page has
its own language switch (classrooms pick the language for the projector, not the browser),
so this module is plain Python and figures can use it without Gradio.
"""

from __future__ import annotations

from explorer.core.text import pick

LANGUAGES = {"en": "English", "zh": "简体中文"}

STRINGS: dict[str, tuple[str, str]] = {
    # page
    "app_title": ("ViT Explorer", "ViT 可视化探索器"),
    "app_subtitle": (
        "Upload an image, pick a vision transformer and see what it attends to. Everything runs "
        "on this machine; when weights are missing, the page says which file to put where.",
        "上传一张图片，选择一个视觉 Transformer，看看它在关注什么。所有计算都在本机完成；"
        "缺少权重时，页面会告诉你该把哪个文件放到哪里。"),
    "language": ("Language / 语言", "Language / 语言"),
    "image_input": ("Upload an image", "上传图片"),
    "examples": ("Examples", "示例图片"),
    "model": ("Model", "模型"),
    "geometry": ("Input geometry", "输入几何"),
    "geometry_model": ("Model default (resize + centre crop)", "模型默认（缩放 + 中心裁剪）"),
    "geometry_native": ("Keep aspect ratio (any size)", "保持宽高比（任意尺寸）"),
    "allow_download": ("Download missing weights from the Hugging Face hub",
                       "缺少权重时从 Hugging Face Hub 下载"),
    "predictions": ("Top-5 predictions", "Top-5 预测"),
    # the bundled demo models' classes (explorer/train/data.py); other labels are shown as they are
    "class_circle": ("circle", "圆形"),
    "class_square": ("square", "正方形"),
    "class_triangle": ("triangle", "三角形"),
    "class_star": ("star", "五角星"),
    "class_cross": ("cross", "十字形"),
    "class_ring": ("ring", "圆环"),
    "class_hexagon": ("hexagon", "六边形"),
    "class_diamond": ("diamond", "菱形"),
    "no_classifier": ("This model has no classifier head (self-supervised backbone): no predictions.",
                      "该模型没有分类头（自监督骨干网络），因此没有预测结果。"),
    "preprocessing": ("What was done to the image", "图像预处理步骤"),
    "tab_attention": ("Attention", "注意力"),
    "picker": ("Click a patch to make it the query", "点击某个 patch，把它设为查询（query）"),
    "query": ("Query token", "查询 token"),
    "query_cls": ("CLS token", "CLS token"),
    "reset_query": ("Query = CLS", "查询设为 CLS"),
    "layer": ("Layer", "层"),
    "head": ("Head", "注意力头"),
    "head_mean": ("mean of heads", "各头平均"),
    "fusion": ("Rollout head fusion", "Rollout 多头融合方式"),
    "colorscale": ("Colour scale", "色标"),
    "shape_table": ("Tensor shapes through the model, for this input",
                    "本次输入在模型中各阶段的张量形状"),
    "shape_stage": ("stage", "阶段"),
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
    "no_pos_embed": ("This model has no learned absolute position embedding.", "该模型没有可学习的绝对位置编码。"),
    "analysing": ("Analysing…", "分析中…"),
    "unexpected_error": ("Something went wrong on the server ({kind}); it has been logged. Try another "
                         "image or model: the app keeps serving.",
                         "服务器出错（{kind}），已记录日志。请换一张图片或换一个模型再试：应用仍在正常运行。"),
    "need_image": ("Upload an image or pick an example first.", "请先上传图片或选择一张示例图片。"),
    "weights_source": ("Weights", "权重来源"),
    "source_file": ("file", "本地文件"),
    "source_bundled": ("bundled demo", "内置演示模型"),
    "source_hub-cache": ("Hugging Face cache", "Hugging Face 缓存"),
    "source_hub-download": ("downloaded from the Hugging Face hub", "从 Hugging Face Hub 下载"),
    "source_random": ("random init", "随机初始化"),
    "export": ("Download arrays (.npz)", "下载数组（.npz）"),
    # Swin lens
    "tab_swin": ("Swin windows", "Swin 窗口"),
    "stage": ("Stage", "阶段"),
    "block": ("Block in stage", "阶段内的块"),
    "swin_picker": ("Click a token: its window and its attention", "点击一个 token：查看它所在的窗口和注意力"),
    "swin_query": ("**Query token:** ({r},{c}) of stage {stage} ({h}×{w} tokens) · window {window}, slot {slot}",
                   "**查询 token：** 第 {stage} 阶段（{h}×{w} 个 token）的 ({r},{c}) · 窗口 {window}，位置 {slot}"),
    "swin_wrap_leak": (
        "⚠️ At this input size timm pads the map by ({ph}, {pw}) tokens *after* the roll, so the mask "
        "regions no longer match the wrapped rows/columns exactly: some wrapped tokens can attend to "
        "far-away ones. This is what the model computes (the official Swin never pads here).",
        "⚠️ 在这个输入尺寸下，timm 在循环移位*之后*补零 ({ph}, {pw}) 个 token，掩码区域不再与绕回的行/列完全对齐："
        "部分绕回的 token 会关注到图像中相距很远的 token。这就是模型实际的计算（官方 Swin 在此处不补零）。"),
    "swin_regular": ("regular windows (W-MSA)", "常规窗口（W-MSA）"),
    "swin_shifted": ("shifted windows (SW-MSA)", "移位窗口（SW-MSA）"),
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
    "key_slot": ("key: slot (row, col)", "key：窗口内位置（行, 列）"),
    "query_slot": ("query: slot (row, col)", "query：窗口内位置（行, 列）"),
    "hover_slot_pair": ("query %{y} → key %{x}<br>%{z:.3f}", "query %{y} → key %{x}<br>%{z:.3f}"),
    "fig_swin_attention": ("Block {block}: {kind}<br>token ({r},{c}) · {head} · stage {stage}",
                           "块 {block}：{kind}<br>token ({r},{c}) · {head} · 第 {stage} 阶段"),
    "swin_pad_weight": (" · {w:.1%} on padding", " · {w:.1%} 落在补零 token 上"),
    "content_logit": ("content q·kᵀ·scale", "内容项 q·kᵀ·scale"),
    "rpb_bias": ("relative position bias", "相对位置偏置"),
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
    # Position-bias lens
    "tab_bias": ("Position bias", "位置偏置"),
    "bias_head_all": ("all heads (small multiples)", "全部头（并排小图）"),
    "bias_group_size": ("DPB group size G′", "DPB 分组大小 G′"),
    "bias_all_heads": ("all {n} heads", "全部 {n} 个头"),
    "bias_sda": ("SDA (short-distance)", "SDA（短距离）"),
    "bias_lda": ("LDA (long-distance)", "LDA（长距离）"),
    "bias_info_swin": (
        "**`{name}`** · {kind} · window M = {m} · {heads} heads · learned RPB table of "
        "{rows} rows ({span} offsets) × {heads} heads, gathered to ({heads}, {n}, {n})",
        "**`{name}`** · {kind} · 窗口 M = {m} · {heads} 个头 · 可学习的 RPB 表共 {rows} 行"
        "（{span} 个偏移）× {heads} 个头，按索引取出后得到 ({heads}, {n}, {n}) 的偏置"),
    "bias_info_dpb": (
        "**`{name}`** · {kind} · trained group size G = {g} · {heads} heads · DPB MLP "
        "2 → {hidden} → {hidden} → {hidden} → {heads}, evaluated on the (2G−1)² = {rows} raw "
        "offsets (Δh, Δw)",
        "**`{name}`** · {kind} · 训练时的分组大小 G = {g} · {heads} 个头 · DPB 多层感知机 "
        "2 → {hidden} → {hidden} → {hidden} → {heads}，输入为 (2G−1)² = {rows} 个原始偏移 (Δh, Δw)"),
    "bias_info_rpb": (
        "**`{name}`** · {kind} · group size G = {g} · {heads} heads · this model holds fixed RPB "
        "tables (already converted from DPB): there is no MLP to evaluate at another G′.",
        "**`{name}`** · {kind} · 分组大小 G = {g} · {heads} 个头 · 该模型保存的是固定的 RPB 表"
        "（已由 DPB 转换），没有可以在其他 G′ 上求值的 MLP。"),
    "bias_info_none": (
        "**`{name}`** · {kind} · this block has no position bias (the table is all zeros).",
        "**`{name}`** · {kind} · 该块没有位置偏置（表全为 0）。"),
    "bias_check_ok": (
        "✅ **DPB ≡ RPB at the trained G = {g}:** the DPB MLP's output and the table of "
        "`dpb_to_rpb(model)` are identical — max |DPB − RPB| = {diff:.3g} in this block, "
        "{worst:.3g} over all {n} blocks.",
        "✅ **在训练时的 G = {g} 上 DPB ≡ RPB：** DPB 多层感知机的输出与 `dpb_to_rpb(model)` "
        "得到的表完全相同——本块 max |DPB − RPB| = {diff:.3g}，全部 {n} 个块中最大为 {worst:.3g}。"),
    "bias_check_bad": (
        "⚠️ **DPB and RPB differ at the trained G = {g}:** max |DPB − RPB| = {diff:.3g} in this "
        "block, {worst:.3g} over all {n} blocks.",
        "⚠️ **在训练时的 G = {g} 上 DPB 与 RPB 不一致：** 本块 max |DPB − RPB| = {diff:.3g}，"
        "全部 {n} 个块中最大为 {worst:.3g}。"),
    "bias_formula": (
        "**From table to bias.** For query slot $i$ and key slot $j$ of an $M_h\\times M_w$ "
        "window (slots row-major), $\\Delta h = h_i - h_j$ and $\\Delta w = w_i - w_j$ lie in "
        "$[-(M-1),\\,M-1]$: $(2M_h-1)(2M_w-1) = {rows}$ offsets, one table row each.\n\n"
        "$$\\begin{{aligned}}\\mathrm{{index}}(i,j) &= (\\Delta h + M_h - 1)\\,(2M_w - 1) + (\\Delta w + M_w - 1)"
        "\\\\ &= (\\Delta h + {a})\\cdot {b} + (\\Delta w + {c})\\end{{aligned}}$$\n\n"
        "$$\\mathrm{{logits}} = \\frac{{q k^\\top}}{{\\sqrt d}} + B,\\qquad "
        "B_{{h,i,j}} = \\hat B\\,[\\mathrm{{index}}(i,j),\\,h]$$\n\n"
        "Swin learns the table $\\hat B$ as a parameter (RPB). CrossFormer's DPB computes it with "
        "an MLP of the raw offsets, $\\hat B[\\cdot,h] = \\mathrm{{MLP}}(\\Delta h,\\Delta w)_h$: "
        "evaluated once at a fixed $G$ that *is* an RPB table (an exact conversion), and "
        "evaluated at another $G'$ it extrapolates to offsets no fixed table has.",
        "**从表到偏置。** 对 $M_h\\times M_w$ 窗口内的查询位置 $i$ 与 key 位置 $j$（窗口内按行优先编号），"
        "$\\Delta h = h_i - h_j$、$\\Delta w = w_i - w_j$ 的取值范围是 $[-(M-1),\\,M-1]$，"
        "共 $(2M_h-1)(2M_w-1) = {rows}$ 种偏移，每种对应表中的一行。\n\n"
        "$$\\begin{{aligned}}\\mathrm{{index}}(i,j) &= (\\Delta h + M_h - 1)\\,(2M_w - 1) + (\\Delta w + M_w - 1)"
        "\\\\ &= (\\Delta h + {a})\\cdot {b} + (\\Delta w + {c})\\end{{aligned}}$$\n\n"
        "$$\\mathrm{{logits}} = \\frac{{q k^\\top}}{{\\sqrt d}} + B,\\qquad "
        "B_{{h,i,j}} = \\hat B\\,[\\mathrm{{index}}(i,j),\\,h]$$\n\n"
        "Swin 把表 $\\hat B$ 作为参数直接学习（RPB）。CrossFormer 的 DPB 用一个多层感知机从原始偏移计算它，"
        "$\\hat B[\\cdot,h] = \\mathrm{{MLP}}(\\Delta h,\\Delta w)_h$：在固定的 $G$ 上求值一次，得到的就是一张 "
        "RPB 表（精确转换）；在其他 $G'$ 上求值，则能外推到固定的表里没有的偏移。"),
    "fig_bias_table": ("RPB table · {head}<br>stage {stage} block {block} · {kind}<br>"
                       "{rows} offsets (Δh, Δw) from −{mh} to {mh}",
                       "RPB 表 · {head}<br>第 {stage} 阶段 块 {block} · {kind}<br>"
                       "{rows} 个偏移 (Δh, Δw)，从 −{mh} 到 {mh}"),
    "fig_bias_table_converted": ("RPB table from dpb_to_rpb · {head}<br>stage {stage} block {block} · {kind}<br>"
                                 "= the DPB MLP evaluated once at G = {g}",
                                 "由 dpb_to_rpb 得到的 RPB 表 · {head}<br>第 {stage} 阶段 块 {block} · {kind}<br>"
                                 "= DPB 多层感知机在 G = {g} 上求值一次"),
    "fig_bias_dpb": ("DPB MLP output at G′ = {gp} · {head}<br>stage {stage} block {block} · "
                     "(2G′−1)² = {rows} offsets<br>{note}",
                     "DPB 多层感知机在 G′ = {gp} 上的输出 · {head}<br>第 {stage} 阶段 块 {block} · "
                     "(2G′−1)² = {rows} 个偏移<br>{note}"),
    "bias_dpb_trained": ("G′ = trained G: identical to the RPB table",
                         "G′ = 训练时的 G：与 RPB 表完全相同"),
    "bias_dpb_extrapolated": ("trained G = {g}: outside the dashed box the MLP extrapolates",
                              "训练时 G = {g}：虚线框外是多层感知机的外推"),
    "bias_dpb_inside": ("G′ < trained G = {g}: the centre of the trained table",
                        "G′ < 训练时的 G = {g}：即训练表的中心部分"),
    "fig_bias_gathered": ("Gathered bias B ({n}×{n}) · {head} · stage {stage} block {block}<br>"
                          "B[i, j] is added to q·kᵀ·scale of query slot i and key slot j",
                          "按索引取出的偏置 B（{n}×{n}）· {head} · 第 {stage} 阶段 块 {block}<br>"
                          "B[i, j] 加到查询位置 i 与 key 位置 j 的 q·kᵀ·scale 上"),
    "fig_bias_index": ("relative_position_index ({n}×{n})<br>index = (Δh + {a})·{b} + (Δw + {c})",
                       "relative_position_index（{n}×{n}）<br>index = (Δh + {a})·{b} + (Δw + {c})"),
    "fig_bias_groups": ("{kind} groups · stage {stage} block {block} · {h}×{w} tokens<br>"
                        "{n} groups of {g}×{g} tokens, {spacing}",
                        "{kind} 分组 · 第 {stage} 阶段 块 {block} · {h}×{w} 个 token<br>"
                        "{n} 组，每组 {g}×{g} 个 token，{spacing}"),
    "bias_groups_adjacent": ("adjacent squares", "相邻的方块"),
    "bias_groups_interval": ("members {ih}×{iw} tokens apart", "组内成员相隔 {ih}×{iw} 个 token"),
    "bias_groups_padded": (" · padded to {hp}×{wp}", " · 补零到 {hp}×{wp}"),
    "bias_groups_fallback": (" · map ≤ G: SDA with one group across", " · 特征图 ≤ G：改用 SDA，一组覆盖短边"),
    "bias_groups_marked": (" · ○ group 0", " · ○ 第 0 组"),
    "fig_bias_need_image": ("SDA/LDA groups on the image: upload an image or pick an example",
                            "SDA/LDA 分组：请先上传图片或选择一张示例图片"),
    "bias_dh": ("Δh = row(query) − row(key)", "Δh = 行(query) − 行(key)"),
    "bias_dw": ("Δw = col(query) − col(key)", "Δw = 列(query) − 列(key)"),
    "bias_value": ("bias", "偏置"),
    "bias_table_row": ("table row", "表的行号"),
    "group_id": ("group", "组编号"),
    "hover_bias_table": ("Δh = %{y}, Δw = %{x}<br>table row %{customdata}<br>bias = %{z:.4f}",
                         "Δh = %{y}，Δw = %{x}<br>表的第 %{customdata} 行<br>偏置 = %{z:.4f}"),
    "hover_bias_gathered": ("query slot %{y} → key slot %{x}<br>Δh = %{customdata[0]}, Δw = %{customdata[1]}"
                            " → table row %{customdata[2]}<br>bias = %{z:.4f}",
                            "query 位置 %{y} → key 位置 %{x}<br>Δh = %{customdata[0]}，Δw = %{customdata[1]}"
                            " → 表的第 %{customdata[2]} 行<br>偏置 = %{z:.4f}"),
    "hover_bias_index": ("query slot %{y} → key slot %{x}<br>Δh = %{customdata[0]}, Δw = %{customdata[1]}"
                         "<br>index = %{z}",
                         "query 位置 %{y} → key 位置 %{x}<br>Δh = %{customdata[0]}，Δw = %{customdata[1]}"
                         "<br>index = %{z}"),
    "hover_bias_group": ("token (row %{customdata[0]}, col %{customdata[1]})<br>group %{z:.0f}",
                         "token（第 %{customdata[0]} 行，第 %{customdata[1]} 列）<br>第 %{z:.0f} 组"),
    # CrossFormer lens
    "tab_crossformer": ("CrossFormer", "CrossFormer"),
    "cf_picker": ("Click a token: its groups and its attention", "点击一个 token：查看它所在的组和它的注意力"),
    "cf_query": ("**Query token:** ({r},{c}) of stage {stage} ({h}×{w} tokens of {px}×{px} px)",
                 "**查询 token：** 第 {stage} 阶段（{h}×{w} 个 token，每个 {px}×{px} 像素）的 ({r},{c})"),
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
    "cf_pad_weight": (" · {w:.1%} on padding", " · {w:.1%} 落在补零 token 上"),
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
    # Twins lens
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
    # NaViT lens
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
    "nv_include_page": ("Also pack the page's current image", "同时打包页面当前的图片"),
    "nv_uploads": ("Add your own images (several at once)", "添加你自己的图片（可多选）"),
    "nv_tokens": ("Patches per image (about; aspect ratio kept)", "每张图像的 patch 数（约数，保持宽高比）"),
    "nv_dropout": ("Token dropout rate p", "token 丢弃率 p"),
    "nv_seed": ("Dropout seed", "丢弃随机种子"),
    "nv_sequence": ("Sequence whose mask is shown", "显示掩码的序列"),
    "nv_sequence_n": ("sequence {s}", "序列 {s}"),
    "nv_page_image": ("page image", "页面图片"),
    "nv_need_images": ("Pick at least one example or upload an image.", "请至少选择一张示例图片或上传一张图片。"),
    "nv_too_many": ("At most {n} images at once.", "一次最多 {n} 张图片。"),
    "nv_equal_ok": ("✅ **Packed = separate:** max |logit(packed) − logit(alone)| = {d:.1e} (≤ {tol:.0e}) "
                    "over all images — the mask keeps the images apart.",
                    "✅ **打包 = 单独运行：** 所有图像上 max |logit(打包) − logit(单独)| = {d:.1e}（≤ {tol:.0e}）"
                    "—— 掩码把各图像隔开了。"),
    "nv_equal_bad": ("⚠️ **Packed ≠ separate:** max |Δlogit| = {d:.1e} (> {tol:.0e}).",
                     "⚠️ **打包 ≠ 单独运行：** max |Δlogit| = {d:.1e}（> {tol:.0e}）。"),
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
    # figures
    "mean_of_heads": ("mean of {n} heads", "{n} 个头的平均"),
    "head_n": ("head {n}", "头 {n}"),
    "fig_query_attention": ("Layer {layer} · {head} · attention of {query}",
                            "第 {layer} 层 · {head} · {query} 的注意力"),
    "fig_rollout": ("Rollout ({fusion} of heads, {layers} layers) · {query}",
                    "注意力 rollout（多头{fusion}，{layers} 层）· {query}"),
    "fusion_mean": ("mean", "平均"),
    "fusion_max": ("max", "最大"),
    "fusion_min": ("min", "最小"),
    "fig_matrix": ("Layer {layer} · {head} · full attention matrix ({n}×{n} tokens)",
                   "第 {layer} 层 · {head} · 完整注意力矩阵（{n}×{n} 个 token）"),
    # MAE lab
    "tab_mae": ("MAE", "MAE"),
    "mae_help": (
        "**MAE** (He et al., 2021) hides most patches of an image and trains a ViT to paint them back. "
        "The **encoder** sees only the visible patches (plus CLS) — at ratio 0.75 a quarter of the "
        "tokens, which is why pre-training is cheap; a narrow **decoder** gets the encoded visible "
        "patches plus one shared learned [MASK] token per hidden patch, each with its position, and "
        "predicts the pixels of every patch. The loss is the mean squared error on the **hidden** "
        "patches only. Masks: **random** as in the paper (seeded uniform noise per patch, the "
        "smallest noise is kept), **block-wise** rectangles, a **grid** that keeps one patch in "
        "every k×k cell, or **painted**: click patches on the picture to hide or show them. "
        "Reconstructions need a checkpoint with the decoder: put the official "
        "`mae_visualize_vit_base.pth` (or `_large`, `_huge`) from "
        "https://dl.fbaipublicfiles.com/mae/visualize/ into `checkpoints/`. The encoder-only "
        "`vit_base_patch16_224.mae` works in the Attention tab.",
        "**MAE**（He 等，2021）遮住图像的大部分 patch，训练 ViT 把它们画回来。**编码器**只看可见的 "
        "patch（加 CLS）——遮挡率 0.75 时只有四分之一的 token，所以预训练很省；窄的**解码器**接收编码后的"
        "可见 patch，并为每个被遮住的 patch 放一个共享的可学习 [MASK] token（各带位置编码），预测每个 "
        "patch 的像素。损失只在**被遮住的** patch 上计算均方误差。掩码方式：论文中的**随机**（每个 patch "
        "一个带种子的均匀噪声，噪声最小的保留）、**块状**矩形、每个 k×k 单元保留一个 patch 的**网格**，"
        "或**手绘**：在图上点击 patch 来遮住或显示它。重建需要带解码器的检查点：把官方的 "
        "`mae_visualize_vit_base.pth`（或 `_large`、`_huge`，下载自 "
        "https://dl.fbaipublicfiles.com/mae/visualize/）放进 `checkpoints/`。只有编码器的 "
        "`vit_base_patch16_224.mae` 可以在“注意力”页使用。"),
    "mae_strategy": ("Masking", "掩码方式"),
    "mae_strategy_random": ("random (paper)", "随机（论文）"),
    "mae_strategy_block": ("block-wise", "块状"),
    "mae_strategy_grid": ("grid", "网格"),
    "mae_strategy_painted": ("painted (click patches)", "手绘（点击 patch）"),
    "mae_ratio": ("Mask ratio (share of patches hidden)", "遮挡率（被遮住的 patch 比例）"),
    "mae_seed": ("Mask seed", "掩码随机种子"),
    "mae_leak": ("Re-apply each hidden patch's TRUE mean and std (leaks the answer)",
                 "用被遮 patch 的真实均值和标准差还原（会泄露答案）"),
    "mae_clear": ("Clear the painted mask", "清除手绘掩码"),
    "mae_picker": ("Click a patch to hide or show it (grey and crossed = hidden)",
                   "点击 patch 以遮住或显示（灰色带叉 = 被遮住）"),
    "mae_hidden": ("hidden", "被遮住"),
    "mae_visible": ("visible", "可见"),
    "mae_panel_original": ("original", "原图"),
    "mae_panel_masked": ("masked ({k} of {n} hidden)", "遮挡后（{n} 个中遮住 {k} 个）"),
    "mae_panel_recon": ("reconstruction", "重建"),
    "mae_panel_recon_normpix": ("reconstruction (per-patch normalised)", "重建（逐 patch 归一化）"),
    "mae_panel_recon_leak": ("reconstruction (TRUE patch stats: leak)", "重建（真实 patch 统计量：泄露）"),
    "mae_panel_pasted": ("reconstruction + visible", "重建 + 可见部分"),
    "mae_panels_title": ("MAE: {strategy} mask, {ratio:.0%} of the patches hidden",
                         "MAE：{strategy}掩码，遮住 {ratio:.0%} 的 patch"),
    "mae_error_title": ("Reconstruction error per hidden patch ({unit})", "每个被遮 patch 的重建误差（{unit}）"),
    "mae_unit_pixels": ("pixel MSE, 0..1 units", "像素 MSE，0..1 单位"),
    "mae_unit_normpix": ("loss, per-patch normalised units", "损失，逐 patch 归一化单位"),
    "mae_summary_mask": ("**Hidden {k} of {n} patches ({ratio:.1%}).** The encoder saw {v} patches + CLS; "
                         "the decoder saw all {n} + CLS.",
                         "**{n} 个 patch 中遮住 {k} 个（{ratio:.1%}）。** 编码器看到 {v} 个 patch + CLS；"
                         "解码器看到全部 {n} 个 + CLS。"),
    "mae_summary_loss": ("The model's loss (MSE on the hidden patches, in its target units): **{loss:.4f}**. "
                         "Only hidden patches are in the loss, so what the decoder outputs for the visible "
                         "ones is untrained (often noise): the last panel pastes the visible patches back.",
                         "模型的损失（被遮 patch 上的 MSE，按其目标单位）：**{loss:.4f}**。损失只算被遮住的 "
                         "patch，所以解码器对可见 patch 的输出没有经过训练（常常是噪声）：最后一幅图把可见 patch "
                         "贴回去。"),
    "mae_summary_pixels": ("Pixel MSE on the hidden patches: **{mse:.4f}**, against {base:.4f} for filling them "
                           "with the mean visible colour (**{ratio:.2f}×** the baseline).",
                           "被遮 patch 上的像素 MSE：**{mse:.4f}**；用可见部分的平均颜色填充为 {base:.4f}"
                           "（是该基线的 **{ratio:.2f}** 倍）。"),
    "mae_normpix_note": ("This checkpoint was trained with norm_pix_loss: it predicts each patch normalised by "
                         "its own mean and std, so its reconstruction shows structure, not true colours.",
                         "该检查点用 norm_pix_loss 训练：它预测按自身均值和标准差归一化的 patch，"
                         "所以重建只显示结构，不是真实颜色。"),
    "mae_leak_warning": ("⚠️ **Leak:** the reconstruction uses the TRUE mean and std of each hidden patch, "
                         "which the model never saw. It looks better than what the model predicted.",
                         "⚠️ **泄露：** 重建用了每个被遮 patch 的真实均值和标准差，模型从未见过它们。"
                         "看起来会比模型真正预测的好。"),
    "mae_painted_note": ("Painted mask: the ratio and seed are not used; click patches to change it.",
                         "手绘掩码：不使用遮挡率和种子；点击 patch 来修改。"),
    "mae_grid_note": ("Grid: one patch in every k×k cell is kept (ratio ≥ 0.5) or hidden (ratio < 0.5), so "
                      "the ratio reached is a step of 1/k².",
                      "网格：每个 k×k 单元保留一个 patch（遮挡率 ≥ 0.5）或遮住一个（遮挡率 < 0.5），"
                      "所以实际遮挡率是 1/k² 的台阶值。"),
    "fig_distance": ("Mean attention distance per head ({w}×{h} px input)",
                     "各头的平均注意力距离（输入 {w}×{h} 像素）"),
    "fig_pos_similarity": ("Cosine similarity of learned position embeddings ({rows}×{cols} grid)",
                           "可学习位置编码的余弦相似度（{rows}×{cols} 网格）"),
    "attention_weight": ("attention", "注意力权重"),
    "rollout_weight": ("rollout", "rollout 权重"),
    "cosine_similarity": ("cosine", "余弦相似度"),
    "x_pixels": ("x (pixels of the model input)", "x（模型输入的像素）"),
    "y_pixels": ("y (pixels of the model input)", "y（模型输入的像素）"),
    # for the narrow side-by-side panels, where the long titles overlap
    "x_px": ("x (input px)", "x（输入像素）"),
    "y_px": ("y (input px)", "y（输入像素）"),
    "key_token": ("key token (attended to)", "key token（被关注的）"),
    "query_token": ("query token (attending)", "query token（发出关注的）"),
    "hover_matrix": ("query %{y}<br>key %{x}<br>attention = %{z:.4f}",
                     "query %{y}<br>key %{x}<br>注意力 = %{z:.4f}"),
    "layer_depth": ("layer (network depth)", "层（网络深度）"),
    "distance_pixels": ("mean attention distance (pixels)", "平均注意力距离（像素）"),
    "head_index": ("head", "头编号"),
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
    # DINO lens
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
    "dn_not_dino": ("ℹ️ This model was not trained with DINO: compare its maps with a DINO model's.",
                    "ℹ️ 该模型不是用 DINO 训练的：可以把它的注意力图与 DINO 模型的对比。"),
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
}


def class_label(name: str, lang: str = "en") -> str:
    """A class name in ``lang``: the bundled demo models' shape classes are translated; other
    names (ImageNet's, a user's own labels) are shown as they are."""
    entry = STRINGS.get(f"class_{name}")
    return pick(entry, lang) if entry else name


def predictions_label(predictions, lang: str = "en") -> dict[str, float]:
    """Top-k predictions as a ``gr.Label`` value {class name in ``lang``: probability}."""
    return {class_label(p.label, lang): p.probability for p in predictions}


def t(key: str, lang: str = "en", **fields: object) -> str:
    """The text for ``key`` in ``lang`` ("en" or "zh"), with ``fields`` filled in."""
    en, zh = STRINGS[key]
    text = pick((en, zh), lang)
    return text.format(**fields) if fields else text
