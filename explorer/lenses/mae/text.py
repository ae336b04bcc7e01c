"""The MAE lab's text in English and Simplified Chinese: labels, help, figure titles,
hover templates and messages (``explorer.ui.i18n.t`` looks every key up, in one table made of
the page's strings and each lens's)."""

from __future__ import annotations

from explorer.core.text import Bilingual

STRINGS: dict[str, Bilingual] = {
    "mae_guide": (
        '**What you see:** MAE hides most patches of the picture from the encoder, and the decoder redraws the hidden ones from the few it saw. **The colour bar:** on the error map, bright hidden patches are the ones the decoder got most wrong; grey patches in the masked image are the hidden ones. **Try this:** move the mask ratio from 25% to 90% and change the seed: the reconstruction stays recognisable far longer than you would expect.',
        '**你看到的：** MAE 对编码器隐藏图片中的大部分 patch，解码器根据看到的少数 patch 重新画出被隐藏的部分。**怎么读色标：** 在误差图上，越亮的被遮 patch 表示解码器错得越多；遮挡图中的灰色 patch 就是被隐藏的部分。**试一试：** 把遮挡比例从 25% 调到 90%，再换一个随机种子：重建结果在很高的比例下仍然能认出来。'),
    "mae_caption": ("Grey patches were hidden from the encoder; the reconstruction is the decoder's guess of their pixels from the visible ones. Hover a patch for its error.",
        "灰色 patch 对编码器是隐藏的；重建是解码器根据可见 patch 对它们像素的猜测。悬停在 patch 上可以看到误差。"),
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
    "mae_leak_warning": ("**Warning — leak:** the reconstruction uses the TRUE mean and std of each hidden patch, "
                         "which the model never saw. It looks better than what the model predicted.",
                         "**注意——泄露：** 重建用了每个被遮 patch 的真实均值和标准差，模型从未见过它们。"
                         "看起来会比模型真正预测的好。"),
    "mae_painted_note": ("**Painted mask is on:** your clicks chose the hidden patches, so the ratio and the "
                         "seed are off. Click patches to change the mask; pick another masking above to leave "
                         "this mode.",
                         "**手绘掩码模式：** 被遮的 patch 由你的点击决定，因此遮挡率和种子不起作用。点击 patch "
                         "来修改掩码；在上方选择其他掩码方式即可退出该模式。"),
    "mae_grid_note": ("Grid: one patch in every k×k cell is kept (ratio ≥ 0.5) or hidden (ratio < 0.5), so "
                      "the ratio reached is a step of 1/k².",
                      "网格：每个 k×k 单元保留一个 patch（遮挡率 ≥ 0.5）或遮住一个（遮挡率 < 0.5），"
                      "所以实际遮挡率是 1/k² 的台阶值。"),
}
