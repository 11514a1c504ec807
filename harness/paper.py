"""The USDRL paper's (AAAI 2025) Tables 1–5, transcribed from docs/reference/paper-tables.md.

These are the *paper's* numbers, shown beside the harness's measured ones; nothing here is a result
of this harness. ``None`` is a cell the paper prints as "-". Table 5's VAC/XC/MG-FD marks are lost
in the paper's text rendering; the rows are mapped to variants only where the text establishes
them (see ``TABLE5``).
"""

from __future__ import annotations

NA = None

# The paper's figures: both are measured on NTU-60 (a dataset kind's name), Figure 4 with the linear
# probe (a protocol's name). Facts about the paper, like the tables below.
FIGURES_DATASET = "ntu60"
FIGURE4_PROTOCOL = "linear"

TABLE1_COLUMNS = ("NTU-60 xsub", "NTU-60 xview", "NTU-120 xsub", "NTU-120 xset", "PKU-MMD II xsub")
# (group, method, publisher, modality, values per TABLE1_COLUMNS)
TABLE1 = (
    ("Hybrid Learning", "MS²L (2020)", "ACM MM'20", "J", (52.6, NA, NA, NA, 27.6)),
    ("Hybrid Learning", "ViA (2024)", "IJCV'24", "J+M", (78.1, 85.8, 69.2, 66.9, NA)),
    ("Hybrid Learning", "PCM3 (2023b)", "ACM MM'23", "J", (83.9, 90.4, 76.5, 77.5, 51.5)),
    ("Masked Sequence Modeling", "GL-Transformer (2022)", "ECCV'22", "J", (76.3, 83.8, 66.0, 68.7, NA)),
    ("Masked Sequence Modeling", "Masked Colorization (2023a)", "TPAMI'23", "J", (79.1, 87.2, 69.2, 70.8, 49.8)),
    ("Masked Sequence Modeling", "MAMP (2023)", "ICCV'23", "J", (84.9, 89.1, 78.6, 79.1, 53.8)),
    ("Negative-based Contrastive Learning", "AimCLR (2022)", "AAAI'22", "J", (74.3, 79.7, 63.4, 63.4, 38.5)),
    ("Negative-based Contrastive Learning", "CMD (2022)", "ECCV'22", "J", (79.8, 86.9, 70.3, 71.5, 43.0)),
    ("Negative-based Contrastive Learning", "HaLP (2023)", "CVPR'23", "J", (79.7, 86.8, 71.1, 72.2, 43.5)),
    ("Negative-based Contrastive Learning", "HiCo (2023)", "AAAI'23", "J", (81.1, 88.6, 72.8, 74.1, 49.4)),
    ("Feature Decorrelation", "HYSP (2023)", "ICLR'23", "J", (78.2, 82.6, 61.8, 64.6, NA)),
    ("Feature Decorrelation", "UmURL (2023)", "ACM MM'23", "J", (82.3, 89.8, 73.5, 74.3, 52.1)),
    ("Feature Decorrelation", "UmURL (2023)", "ACM MM'23", "J+M+B", (84.2, 90.9, 75.2, 76.3, 52.6)),
    ("Feature Decorrelation", "USDRL (STTR)", "This work", "J", (84.2, 90.8, 76.0, 76.9, 51.8)),
    ("Feature Decorrelation", "USDRL (DSTE)", "This work", "J", (85.2, 91.7, 76.6, 78.1, 54.4)),
    ("3s-ensemble", "3s-HiCLR (2023a)", "AAAI'23", "J+M+B", (80.4, 85.5, 68.2, 68.8, 53.8)),
    ("3s-ensemble", "3s-CMD (2022)", "ECCV'22", "J+M+B", (84.1, 90.9, 74.7, 76.1, 52.6)),
    ("3s-ensemble", "3s-ActCLR (2023)", "CVPR'23", "J+M+B", (84.3, 88.8, 74.3, 75.7, NA)),
    ("3s-ensemble", "3s-RVTCLR+ (2023b)", "ICCV'23", "J+M+B", (79.7, 84.6, 68.0, 68.9, NA)),
    ("3s-ensemble", "3s-UmURL (2023)", "ACM MM'23", "J+M+B", (84.4, 91.4, 75.8, 77.2, 54.3)),
    ("3s-ensemble", "3s-USDRL (DSTE)", "This work", "J+M+B", (87.1, 93.2, 79.3, 80.6, 59.7)),
)

TABLE2_COLUMNS = ("x-sub 1 %", "x-sub 10 %", "x-view 1 %", "x-view 10 %")
TABLE2 = (
    ("MS²L (2020)", (33.1, 65.2, NA, NA)),
    ("ISC (2021)", (35.7, 65.9, 38.1, 72.5)),
    ("HiCLR (2023a)", (51.1, 74.6, 50.9, 79.6)),
    ("CMD (2022)", (50.6, 75.4, 53.0, 80.2)),
    ("PCM3 (2023b)", (53.8, 77.1, 53.1, 82.8)),
    ("USDRL (STTR)", (55.0, 76.1, 59.1, 82.0)),
    ("USDRL (DSTE)", (57.3, 80.2, 60.7, 84.0)),
)

TABLE3_COLUMNS = ("NTU-60 x-sub", "NTU-60 x-view", "NTU-120 x-sub", "NTU-120 x-setup")
TABLE3 = (
    ("ISC (2021)", (62.5, 82.6, 50.6, 52.3)),
    ("HaLP (2023)", (65.8, 83.6, 55.8, 59.0)),
    ("CMD (2022)", (70.6, 85.4, 58.3, 60.9)),
    ("UmURL (2023)", (71.3, 88.3, 58.5, 60.9)),
    ("PCM3 (2023b)", (73.7, 88.8, 63.1, 66.8)),
    ("USDRL (STTR)", (73.7, 88.5, 58.9, 64.8)),
    ("USDRL (DSTE)", (75.0, 89.3, 63.3, 66.7)),
)

TABLE4_COLUMNS = ("mAP_a (%)", "mAP_v (%)")
TABLE4 = (
    ("MS²L (2020)", (50.9, 49.1)),
    ("CRRL (2022)", (52.8, 50.5)),
    ("ISC (2021)", (55.1, 54.2)),
    ("CMD (2022)", (59.4, 59.2)),
    ("PCM3 (2023b)", (61.8, 61.3)),
    ("USDRL (STTR)", (66.1, 65.9)),
    ("USDRL (DSTE)", (75.7, 74.9)),
)

TABLE5_COLUMNS = ("Recog.", "Retrieval")
# (row, what the text establishes, encoder, values). Rows 5 and 6 are the two partial DSTE variants
# (without XC; single-grained); the paper's text does not say which is which.
TABLE5 = (
    (1, "negative-based pretraining", "STTR", (74.8, 63.8)),
    (2, "MG-FD without XC", "STTR", (83.7, 73.2)),
    (3, "full (VAC + XC + MG-FD)", "STTR", (84.2, 73.7)),
    (4, "negative-based pretraining", "DSTE", (77.3, 64.4)),
    (5, "partial: without XC or single-grained (order unknown)", "DSTE", (84.8, 74.5)),
    (6, "partial: without XC or single-grained (order unknown)", "DSTE", (84.6, 74.7)),
    (7, "full (VAC + XC + MG-FD)", "DSTE", (85.2, 75.0)),
)
