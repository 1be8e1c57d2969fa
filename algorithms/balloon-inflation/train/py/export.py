"""`export.py CHECKPOINT OUT_ONNX [--flips]`: exports a checkpoint's moving-average weights
(train.py) to ONNX. With --flips, the exported model averages the probabilities of the frame
and of its horizontal, vertical and double mirror images (the network was trained on mirrored
and rotated crops; the average is steadier than any one of them), at four times the compute."""
import sys

import torch
from torch import nn

from prep import CHANNELS, SIDE
from train import Detector, width_of


class Flips(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frames):
        outs = [self.model(frames), self.model(torch.flip(frames, [3])), self.model(torch.flip(frames, [2])), self.model(torch.flip(frames, [2, 3]))]
        return (outs[0] + outs[1] + outs[2] + outs[3]) / 4


def main():
    checkpoint, out = sys.argv[1], sys.argv[2]
    model = Detector(width_of(checkpoint))
    model.load_state_dict(torch.load(checkpoint)['ema'])
    model.eval()
    if '--flips' in sys.argv[3:]:
        model = Flips(model).eval()
    torch.onnx.export(model, torch.zeros(8, CHANNELS, SIDE, SIDE), out, input_names=['frames'], output_names=['probabilities'],
                      dynamic_axes={'frames': {0: 'frames'}, 'probabilities': {0: 'frames'}}, opset_version=13)


if __name__ == '__main__':
    main()
