"""The position-bias lens's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "bias_guide": (
        "**What you see:** the relative position bias tables: the number each head adds to the attention logit of a (query, key) pair, by their offset (Δh, Δw), and CrossFormer's DPB network turned into the same table exactly. **The colour bar:** red raises that pair's attention, blue lowers it, white adds nothing; the centre cell is the query attending to itself. **Try this:** change the group size and compare DPB with its converted table — they are equal, and the DPB still works for sizes it was not trained on.",
        '**你看到的：** 相对位置偏置表：每个头按 (query, key) 的相对偏移 (Δh, Δw) 加到注意力 logit 上的数，以及把 CrossFormer 的 DPB 网络精确转换成的同样的表。**怎么读色标：** 红色提高这对 token 的注意力，蓝色降低它，白色不加任何值；中心格是查询关注自己。**试一试：** 改变组大小，对比 DPB 和转换后的表——两者相等，而且 DPB 对没训练过的大小也能用。'),
    "bias_caption": ("Each cell is the number added to the logit of a (query, key) pair at that offset (Δh, Δw): red raises that pair's attention, blue lowers it. Hover for numbers.",
        "每个格子是偏移 (Δh, Δw) 处一对 (query, key) 的 logit 上所加的数：红色使该对的注意力增大，蓝色使其减小。悬停可以看到具体数值。"),
    "tab_bias": ("Position bias", "位置偏置"),
    "bias_head_all": ("all heads (small multiples)", "全部头（并排小图）"),
    "bias_group_size": ("DPB group size G′", "DPB 分组大小 G′"),
    "bias_all_heads": ("all {n} heads", "全部 {n} 个头"),
    "bias_info_swin": (
        "**`{name}`** · {kind} · window M = {m} · {heads} heads · learned RPB table of "
        "{rows} rows ({span} offsets) × {heads} heads, gathered to ({heads}, {n}, {n})",
        "**`{name}`** · {kind} · 窗口 M = {m} · {heads} 个头 · 可学习的 RPB 表共 {rows} 行"
        "（{span} 个偏移）× {heads} 个头，按索引取出后得到 ({heads}, {n}, {n}) 的偏置"),
    "bias_info_cpb": (
        "**`{name}`** · {kind} · window M = {m} · {heads} heads · SwinV2's **continuous position bias**: "
        "an MLP (2 → {hidden} → {heads}) on the log-spaced offsets "
        "Δ̂ = sign(Δ)·log₂(1 + 8|Δ|/(M−1)) / log₂8, bias 16·σ(MLP(Δ̂)) added to the cosine-attention "
        "logits. At this window it is a fixed table of {rows} rows ({span} offsets) × {heads} heads (shown), "
        "indexed like Swin's.",
        "**`{name}`** · {kind} · 窗口 M = {m} · {heads} 个头 · SwinV2 的**连续位置偏置**（CPB）："
        "一个多层感知机（2 → {hidden} → {heads}）作用在对数间隔的偏移 "
        "Δ̂ = sign(Δ)·log₂(1 + 8|Δ|/(M−1)) / log₂8 上，偏置 16·σ(MLP(Δ̂)) 加到余弦注意力的 logit 上。"
        "在这个窗口上它就是一张固定的表：{rows} 行（{span} 个偏移）× {heads} 个头（如图），索引方式与 Swin 相同。"),
    "bias_check_cpb": (
        "CPB ≡ table: `cpb_to_table` replaces every CPB MLP by its table at the window; on a probe input "
        "the two models' logits differ by at most {diff:.1e}.",
        "CPB ≡ 表：`cpb_to_table` 把每个 CPB 多层感知机换成它在该窗口上的表；在一个探测输入上，"
        "两个模型的 logit 最多相差 {diff:.1e}。"),
    "fig_bias_table_cpb": ("CPB table 16·σ(MLP(log-spaced Δ)) · {head}<br>stage {stage} block {block} · {kind}<br>"
                           "the fixed table at window {m}: {rows} offsets",
                           "CPB 表 16·σ(MLP(对数间隔的 Δ)) · {head}<br>第 {stage} 阶段 块 {block} · {kind}<br>"
                           "窗口 {m} 上的固定表：{rows} 个偏移"),
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
        "**Checked — DPB ≡ RPB at the trained G = {g}:** the DPB MLP's output and the table of "
        "`dpb_to_rpb(model)` are identical — max |DPB − RPB| = {diff:.3g} in this block, "
        "{worst:.3g} over all {n} blocks.",
        "**已验证——在训练时的 G = {g} 上 DPB ≡ RPB：** DPB 多层感知机的输出与 `dpb_to_rpb(model)` "
        "得到的表完全相同——本块 max |DPB − RPB| = {diff:.3g}，全部 {n} 个块中最大为 {worst:.3g}。"),
    "bias_check_bad": (
        "**Warning — DPB and RPB differ at the trained G = {g}:** max |DPB − RPB| = {diff:.3g} in this "
        "block, {worst:.3g} over all {n} blocks.",
        "**注意——在训练时的 G = {g} 上 DPB 与 RPB 不一致：** 本块 max |DPB − RPB| = {diff:.3g}，"
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
}
