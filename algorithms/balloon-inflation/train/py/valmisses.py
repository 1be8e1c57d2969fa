"""Where a model goes wrong on validation runs, with the shipped event rule.

`valmisses.py FOLDER[:FOLDER...] MODEL.onnx|CHECKPOINT.pt`: each missed true event by kind
(seen weakly: the highest inflated probability inside it between 0.6 and the rule's peak, or
0.3-0.6, or under 0.3; or overlapping a reported event with IoU under 0.5: merged with
another true event, fragmented, cut short or too long), then event F1 (found, false,
missed) by each parameter of the runs' descriptions. Validation runs only: the held-out set is
never read here."""
import collections
import sys

import numpy as np

from valevents import inflated_probabilities, load, validation_runs
from valscore import events_of, f1_of, iou, run_counts


def miss_kind(p, truth, event, found):
    touching = [f for f in found if iou(f, event) > 0]
    if touching:
        if len(touching) > 1:
            return 'fragmented'
        f = touching[0]
        if sum(1 for t in truth if iou(f, t) > 0) > 1:
            return 'merged with another'
        return 'cut short' if f[1] - f[0] < event[1] - event[0] else 'too long'
    peak = float(p[event[0]:event[1] + 1].max())
    return 'seen weakly (0.6 to peak)' if peak >= 0.6 else 'seen weakly (0.3-0.6)' if peak >= 0.3 else 'hardly seen (under 0.3)'


GROUPS = {
    'frame rate': lambda m: m.get('fps'),
    'bits stored': lambda m: m.get('bits'),
    'encoding': lambda m: f"{m.get('encoding')} {m.get('photometric')}",
    'frame size': lambda m: m.get('size'),
    'inflations': lambda m: m.get('inflations'),
    'marker spacing (share of the field, rounded to 0.05)': lambda m: None if m.get('spacing') is None else round(m['spacing'] * 20) / 20,
    'dose': lambda m: None if m.get('dose') is None else '<500' if m['dose'] < 500 else '500-2000' if m['dose'] < 2000 else '>=2000',
}


def main():
    folders, path = sys.argv[1].split(':'), sys.argv[2]
    runs = [run for folder in folders for run in validation_runs(folder)]
    probabilities = inflated_probabilities(load(path), runs)
    kinds = collections.Counter()
    for p, meta in probabilities:
        p = np.asarray(p)
        truth = [tuple(e) for e in meta['events']]
        found = events_of(p)
        for event in truth:
            if max((iou(event, f) for f in found), default=0) < 0.5:
                kinds[miss_kind(p, truth, event, found)] += 1
    print('missed events:', dict(kinds.most_common()))
    counts = run_counts(probabilities)
    for name, key in GROUPS.items():
        groups = collections.defaultdict(lambda: np.zeros(3, int))
        for (_, meta), c in zip(probabilities, counts):
            groups[key(meta)] += np.array(c[:3])
        print(f'{name}:', '; '.join(f'{k}: {f1_of(v):.2f} {tuple(int(x) for x in v)}' for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))))


if __name__ == '__main__':
    main()
