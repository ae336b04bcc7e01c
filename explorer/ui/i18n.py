"""English and Simplified Chinese text for the page and the figures.

One table, keyed by short names; ``t(key, lang, **fields)`` formats an entry. It is made of the
page's strings (below: the header, the shared controls, weight sources, what several lenses say)
and each lens's own, which live beside the lens in ``explorer/lenses/<lens>/text.py``; a key may
be defined once only. Every text is an (English, Chinese) pair picked by ``core.text.pick``, the
one language check. The page has its own language switch (classrooms pick the language for the
projector, not the browser), so this module is plain Python and figures can use it without Gradio.
"""

from __future__ import annotations

import importlib
import pkgutil

import explorer.lenses
from explorer.core.text import Bilingual, pick

LANGUAGES = {"en": "English", "zh": "简体中文"}

PAGE_STRINGS: dict[str, Bilingual] = {
    # page
    "app_title": ("ViT Explorer", "ViT 可视化探索器"),
    "app_subtitle": (
        "Upload an image, pick a vision transformer and see what it attends to. Everything runs "
        "on this machine; when weights are missing, the page says which file to put where.",
        "上传一张图片，选择一个视觉 Transformer，看看它在关注什么。所有计算都在本机完成；"
        "缺少权重时，页面会告诉你该把哪个文件放到哪里。"),
    "language": ("Language / 语言", "Language / 语言"),
    # the student guide's button on every lens's banner line (the guides are in each lens's text)
    "guide_button": ("For students", "学生导读"),
    # links and presenter mode (ui/share.py)
    "presenter": ("Presenter mode (large text, no image column)", "演示模式（大字号，隐藏图片栏）"),
    "link_button": ("Link to this view", "生成本视图的链接"),
    "link": ("Opens this tab, image and settings again (uploads: while this server keeps them)",
             "再次打开这个标签页、这张图和这些设置（上传的图片：在服务器保留期间有效）"),
    "link_rejected": ("This link's values for {names} could not be used and were left out.",
                      "链接中 {names} 的值无法使用，已忽略。"),
    # the suggested lesson (ui/lesson.py)
    "tab_lesson": ("Lesson", "课程"),
    "lesson_intro": (
        "**A suggested lesson, about 45 minutes.** Six tabs in order, from the plain ViT to "
        "self-supervised DINO; each step says what to show and what to ask. Every tab works on the "
        "example images and the bundled models, with no network.",
        "**建议的课程，约 45 分钟。** 按顺序走过六个标签页，从最基本的 ViT 到自监督的 DINO；"
        "每一步都写明要展示什么、要提什么问题。每个标签页都能用示例图片和内置模型运行，不需要网络。"),
    "lesson_open": ("Open →", "打开 →"),
    "lesson_vit": (
        "**1 · ViT — Attention.** An image becomes a sequence of patch tokens plus a CLS token. "
        "Click a patch and move through the layers: early heads look nearby, late ones at the object. "
        "*Ask:* why does the CLS token's attention end up on the object?",
        "**1 · ViT — 注意力。** 图片变成一串 patch token 加上一个 CLS token。点击一个 patch 并逐层查看："
        "浅层的头看附近，深层的头看物体。*提问：* 为什么 CLS token 的注意力最后落在物体上？"),
    "lesson_swin": (
        "**2 · Swin — windows.** Attention only inside windows makes the cost linear in the image "
        "size; the shifted blocks roll the map so information crosses the window borders, and the mask "
        "keeps rolled-in regions apart. *Ask:* what would go wrong without the mask?",
        "**2 · Swin — 窗口。** 只在窗口内计算注意力，计算量随图像大小线性增长；移位块循环移动特征图，"
        "让信息跨过窗口边界，掩码则把移入的区域隔开。*提问：* 没有掩码会出什么问题？"),
    "lesson_bias": (
        "**3 · Position bias.** Inside a window, each head adds a learned number per relative offset "
        "to the attention logits; CrossFormer's DPB computes that table with a small network, and "
        "converts to it exactly. *Ask:* why can a DPB serve group sizes it was not trained on?",
        "**3 · 位置偏置。** 在窗口内，每个头按相对偏移给注意力 logit 加上一个学到的数；CrossFormer 的 DPB "
        "用一个小网络算出这张表，并能精确转换成它。*提问：* 为什么 DPB 能用于没训练过的组大小？"),
    "lesson_crossformer": (
        "**4 · CrossFormer.** Each token is embedded at several scales at once, and attention alternates "
        "between nearby groups (SDA) and groups spread across the image (LDA). *Ask:* how does LDA reach "
        "far without attending to every token?",
        "**4 · CrossFormer。** 每个 token 同时以几种尺度嵌入，注意力在相邻分组（SDA）和分散在全图的分组"
        "（LDA）之间交替。*提问：* LDA 怎样在不关注所有 token 的情况下看到远处？"),
    "lesson_mae": (
        "**5 · MAE.** Hide three quarters of the patches and let the decoder redraw them: the encoder "
        "learns without labels. Raise the mask ratio and change the seed. *Ask:* why can so much be "
        "hidden from images, and not from text?",
        "**5 · MAE。** 遮住四分之三的 patch，让解码器把它们重新画出来：编码器无需标签就能学习。"
        "调高遮挡比例、换一个随机种子。*提问：* 为什么图像可以遮住这么多，而文本不行？"),
    "lesson_dino": (
        "**6 · DINO.** Trained without a single label, the last block's CLS attention finds the "
        "object; the patch features' PCA colours its parts. Compare with a supervised model. *Ask:* "
        "what does self-distillation teach the model to look at?",
        "**6 · DINO。** 没有用过一个标签，最后一个块的 CLS 注意力却能找到物体；patch 特征的 PCA 给物体的"
        "各部分上色。与监督训练的模型对比。*提问：* 自蒸馏教会了模型去看什么？"),
    "image_input": ("Upload an image", "上传图片"),
    "examples": ("Examples", "示例图片"),
    "model": ("Model", "模型"),
    "compare_panel": ("Compare with a second model on the same image", "与第二个模型在同一张图片上对比"),
    "compare": ("Second model", "第二个模型"),
    "compare_none": ("— none —", "—— 不对比 ——"),
    "model_info": ("Pick one, or type any timm model name (e.g. deit3_small_patch16_224)",
                   "从列表中选择，或输入任意 timm 模型名（例如 deit3_small_patch16_224）"),
    "geometry": ("Input geometry", "输入几何"),
    "geometry_model": ("Model default (resize + centre crop)", "模型默认（缩放 + 中心裁剪）"),
    "geometry_native": ("Keep aspect ratio (any size)", "保持宽高比（任意尺寸）"),
    # the "your own model" panel (ui/own_model.py)
    "own_model": ("Your own model (checkpoint)", "你自己的模型（检查点）"),
    "own_help": ("A fine-tuned checkpoint (safetensors, or a PyTorch state dict read without running code; "
                 "up to {mb} MB) and, if you have them, its class names (one per line) or card (.json). "
                 "Kept for this session only.",
                 "微调后的检查点（safetensors，或 PyTorch state dict，读取时不执行任何代码；不超过 {mb} MB），"
                 "以及它的类别名（每行一个）或卡片文件（.json），如果有的话。只在本次会话中保留。"),
    "own_checkpoint": ("Checkpoint", "检查点"),
    "own_labels": ("Class names or card (optional)", "类别名或卡片文件（可选）"),
    "own_arch": ("Architecture", "模型结构"),
    "own_arch_auto": ("Find it from the file", "根据文件自动识别"),
    "own_pre": ("Preprocessing (mean / std)", "预处理（均值 / 标准差）"),
    "own_pre_default": ("From the card, else the architecture's default", "来自卡片，否则用该结构的默认值"),
    "own_pre_imagenet": ("ImageNet (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)",
                         "ImageNet (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)"),
    "own_pre_cifar10": ("CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.247, 0.2435, 0.2616)",
                        "CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.247, 0.2435, 0.2616)"),
    "own_pre_half": ("0.5 / 0.5 (Inception style)", "0.5 / 0.5（Inception 风格）"),
    "own_choice": ("{name} (uploaded)", "{name}（已上传）"),
    "own_opened": ("**Opened `{name}`** as {architecture} ({how}). Pick it in the model list of: {tabs}.",
                   "**已打开 `{name}`**，结构为 {architecture}（{how}）。可在以下视图的模型列表中选择它：{tabs}。"),
    "allow_download": ("Download missing weights (Hugging Face hub)", "缺少权重时下载（Hugging Face Hub）"),
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
    "picker": ("Click a patch to make it the query", "点击某个 patch，把它设为查询（query）"),
    "query": ("Query token", "查询 token"),
    "query_cls": ("CLS token", "CLS token"),
    "head": ("Head", "注意力头"),
    "head_mean": ("mean of heads", "各头平均"),
    "shape_stage": ("stage", "阶段"),
    "no_pos_embed": ("This model has no learned absolute position embedding.", "该模型没有可学习的绝对位置编码。"),
    "unexpected_error": ("Something went wrong on the server ({kind}); it has been logged. Try another "
                         "image or model: the app keeps serving.",
                         "服务器出错（{kind}），已记录日志。请换一张图片或换一个模型再试：应用仍在正常运行。"),
    "need_image": ("Upload an image or pick an example first.", "请先上传图片或选择一张示例图片。"),
    "weights_source": ("Weights", "权重来源"),
    "device": ("Device", "设备"),
    "source_file": ("file", "本地文件"),
    "source_bundled": ("bundled demo", "内置演示模型"),
    "banner_warning": ("Warning", "注意"),
    "constant_panel": ("constant: {v:.4g} everywhere", "常数：处处为 {v:.4g}"),
    "banner_note": ("Note", "说明"),
    "demo_note": (
        "**A demo model:** it knows only the {n} synthetic shapes ({classes}). A photo gets one of "
        "these labels, which means nothing, and its maps look like noise. For real models run "
        "`python -m explorer fetch --recommended` (README, “Weights”).",
        "**这是演示模型：** 它只认识 {n} 种合成形状（{classes}）。照片也会得到其中一个标签，但没有意义，"
        "注意力图看起来也像噪声。要使用真实模型，请运行 `python -m explorer fetch --recommended`"
        "（见 README 的“Weights”一节）。"),
    "source_hub-cache": ("Hugging Face cache", "Hugging Face 缓存"),
    "source_hub-download": ("downloaded from the Hugging Face hub", "从 Hugging Face Hub 下载"),
    "source_random": ("random init", "随机初始化"),
    "export": ("Download arrays (.npz)", "下载数组（.npz）"),
    # shared by several lenses (each lens's own text is in explorer/lenses/<lens>/text.py)
    "stage": ("Stage", "阶段"),
    "block": ("Block in stage", "阶段内的块"),
    "swin_regular": ("regular windows (W-MSA)", "常规窗口（W-MSA）"),
    "swin_shifted": ("shifted windows (SW-MSA)", "移位窗口（SW-MSA）"),
    "key_slot": ("key: slot (row, col)", "key：窗口内位置（行, 列）"),
    "query_slot": ("query: slot (row, col)", "query：窗口内位置（行, 列）"),
    "rpb_bias": ("relative position bias", "相对位置偏置"),
    "bias_sda": ("SDA (short-distance)", "SDA（短距离）"),
    "bias_lda": ("LDA (long-distance)", "LDA（长距离）"),
    "bias_groups_adjacent": ("adjacent squares", "相邻的方块"),
    "bias_groups_interval": ("members {ih}×{iw} tokens apart", "组内成员相隔 {ih}×{iw} 个 token"),
    "cf_query": ("**Query token:** ({r},{c}) of stage {stage} ({h}×{w} tokens of {px}×{px} px)",
                 "**查询 token：** 第 {stage} 阶段（{h}×{w} 个 token，每个 {px}×{px} 像素）的 ({r},{c})"),
    "cf_pad_weight": (" · {w:.1%} on padding", " · {w:.1%} 落在补零 token 上"),
    "mean_of_heads": ("mean of {n} heads", "{n} 个头的平均"),
    "head_n": ("head {n}", "头 {n}"),
    "attention_weight": ("attention", "注意力权重"),
    "x_pixels": ("x (pixels of the model input)", "x（模型输入的像素）"),
    "y_pixels": ("y (pixels of the model input)", "y（模型输入的像素）"),
    # for the narrow side-by-side panels, where the long titles overlap
    "x_px": ("x (input px)", "x（输入像素）"),
    "y_px": ("y (input px)", "y（输入像素）"),
    "head_index": ("head", "头编号"),
}



def _catalog() -> dict[str, Bilingual]:
    """The page's strings and every lens folder's ``text.STRINGS`` in one table."""
    table = dict(PAGE_STRINGS)
    for folder in pkgutil.iter_modules(explorer.lenses.__path__):
        if not folder.ispkg:
            continue
        try:
            own = importlib.import_module(f"explorer.lenses.{folder.name}.text").STRINGS
        except ModuleNotFoundError as err:
            if err.name != f"explorer.lenses.{folder.name}.text":
                raise
            continue
        clash = table.keys() & own.keys()
        if clash:
            raise KeyError(f"text keys defined twice ({folder.name}): {sorted(clash)}")
        table.update(own)
    return table


STRINGS: dict[str, Bilingual] = _catalog()


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
