"""Explain a whole scan: a NIfTI volume in, one answer per volume and an explanation volume out.

Run:  python examples/explain_volume.py        (a few minutes on a laptop CPU; needs neuroxai[medical])
The "scan" is a stack of synthetic phantom slices written as NIfTI, NOT medical data; point
read_volume at your own .nii/.nii.gz file or DICOM series folder instead.
"""

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

import neuroxai
from neuroxai.data import Window, phantoms, read_volume
from neuroxai.volumes import explain_volume, predict_volume

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n-per-class", type=int, default=150)
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--epochs", type=int, default=25)
parser.add_argument("--out", default="runs/volume")
args = parser.parse_args()
out = Path(args.out)

# 1. A model of 2-D slices: the built-in cnn trained on phantoms (any run directory works the same way).
data = phantoms(n_per_class=args.n_per_class, image_size=args.image_size, seed=0)
neuroxai.Trainer("cnn", image_size=args.image_size, epochs=args.epochs, progress=False).fit(data, out_dir=out / "run")
model = neuroxai.load(out / "run")

# 2. A phantom "scan": blank slices above and below the head, healthy slices, four glioma slices, at twice
#    the model's resolution, in scanner-like units (0..1020) with an LPS-style affine (3 mm slices).
side = 2 * args.image_size
x, y = phantoms(n_per_class=10, image_size=side, seed=7).arrays(
    "train", image_size=(side, side), channels=1, input_range=(0, 255)
)
glioma, notumor = x[y == 0][:4, ..., 0], x[y == 2][:5, ..., 0]
blank = np.zeros((2, side, side), np.float32)
stack = np.concatenate([blank, notumor[:3], glioma, notumor[3:], blank]) * 4.0  # [Z, rows, cols]
affine = np.array([[-0.9, 0, 0, 60.0], [0, -0.9, 0, 80.0], [0, 0, 3.0, -20.0], [0, 0, 0, 1]])
scan = out / "scan.nii.gz"
nib.save(nib.Nifti1Image(np.ascontiguousarray(stack.transpose(2, 1, 0)), affine), scan)  # on disk: x (to L), y (to P), z

# 3. Read it: axial slices, radiological display, and a window that maps the scanner units to 8 bit as the
#    training slices were (the default, Window("auto"), stretches the 0.5-99.5 percentiles of the head instead).
volume = read_volume(scan, window=Window("fixed", center=510, width=1020))
print(f"{volume.name}: {volume.n_slices} slices of {volume.voxels.shape[1]} x {volume.voxels.shape[2]} px")

# 4. One answer per volume: every brain slice classified in one batched pass, then the per-volume rule
#    (mean probability over each tumour class's 3 most confident slices, answer if >= 0.5, else notumor).
prediction = predict_volume(model, volume)
print(prediction.summary())
print("slices without brain (not classified):", prediction.skipped)

# 5. Explain the volume's answer on every brain slice; the heatmap volume goes back on the scan's own grid and
#    affine (it overlays in 3D Slicer, ITK-SNAP or FSLeyes) with a montage of the slices that carried the answer.
result = explain_volume(neuroxai.Explainer(model, "gradcam"), volume, prediction=prediction)
files = result.save(out / "explanations")
heatmap = nib.load(files.heatmap)
print("heatmap:", files.heatmap, heatmap.shape, "same affine as the scan:", bool(np.allclose(heatmap.affine, affine)))
print("montage:", files.montage)
print(f"Same from the command line: neuroxai explain {out / 'run'} {scan} --window 510,1020 --out {out / 'cli'}")
