"""Domain-randomized angioplasty X-ray runs: a physical image model (attenuation, photon
noise, scatter, detector blur, linear / log / gamma stored encodings at any bit depth,
MONOCHROME1/2, collimator shutters, image-intensifier circle) over a randomized chest,
vessel tree, catheters, wires and balloon. Every parameter is drawn from a Profile, so the
training, held-out and stress sets differ in their ranges, not only in their seeds."""
import math
import numpy as np
from scipy.ndimage import gaussian_filter

from profiles import Profile


def uni(rng, lohi):
    return float(rng.uniform(lohi[0], lohi[1]))


def loguni(rng, lohi):
    return float(math.exp(rng.uniform(math.log(lohi[0]), math.log(lohi[1]))))


def smooth_field(rng, n, sigma):
    f = gaussian_filter(rng.standard_normal((n, n)), sigma, mode='wrap')
    return f / (f.std() + 1e-9)


def random_curve(rng, start, heading, length, step, tortuosity):
    """A smooth random walk: points every `step` pixels, heading wandering by `tortuosity`."""
    n = max(2, int(length / step))
    turns = gaussian_filter(rng.standard_normal(n), 3.0) * tortuosity * 3.0
    angles = heading + np.cumsum(turns)
    pts = np.empty((n, 2))
    pts[0] = start
    pts[1:, 0] = start[0] + np.cumsum(np.cos(angles[1:]) * step)
    pts[1:, 1] = start[1] + np.cumsum(np.sin(angles[1:]) * step)
    return pts


def resample(pts, step):
    """Points along a polyline every `step` pixels, with their arc length."""
    seg = np.hypot(*(pts[1:] - pts[:-1]).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    q = np.arange(0.0, s[-1], step)
    return np.stack([np.interp(q, s, pts[:, 0]), np.interp(q, s, pts[:, 1])], 1), q


def splat(img, pts, w):
    """Adds weights w at sub-pixel points (bilinear)."""
    n = img.shape[0]
    x, y = pts[:, 0], pts[:, 1]
    ok = (x >= 0) & (x < n - 1) & (y >= 0) & (y < n - 1)
    x, y, w = x[ok], y[ok], (np.broadcast_to(w, ok.shape)[ok])
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    flat = img.reshape(-1)
    np.add.at(flat, y0 * n + x0, w * (1 - fx) * (1 - fy))
    np.add.at(flat, y0 * n + x0 + 1, w * fx * (1 - fy))
    np.add.at(flat, (y0 + 1) * n + x0, w * (1 - fx) * fy)
    np.add.at(flat, (y0 + 1) * n + x0 + 1, w * fx * fy)


class Layers:
    """Line densities splatted per blur width, blurred once each: tubes of several radii."""

    def __init__(self, n):
        self.n = n
        self.by_sigma = {}

    def add(self, sigma, pts, peak):
        """A tube whose projected centre density is `peak` (log attenuation), blur `sigma` px."""
        sigma = max(0.5, round(sigma * 4) / 4)
        img = self.by_sigma.get(sigma)
        if img is None:
            img = self.by_sigma[sigma] = np.zeros((self.n, self.n))
        splat(img, pts, np.asarray(peak) * math.sqrt(2 * math.pi) * sigma * 0.5)

    def render(self):
        out = np.zeros((self.n, self.n))
        for sigma, img in self.by_sigma.items():
            out += gaussian_filter(img, sigma)
        return out


def anatomy(rng, p: Profile, n):
    """Static chest background (log attenuation) on an n x n canvas, plus heart and diaphragm parameters."""
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    a = uni(rng, p.body) + 0.35 * smooth_field(rng, n, n / 6)
    lung = gaussian_filter((rng.random((8, 8)) > 0.5).astype(float), 1.0)
    lung = np.kron(lung, np.ones((n // 8 + 1, n // 8 + 1)))[:n, :n]
    a -= uni(rng, (0.2, 0.9)) * gaussian_filter(lung, n / 16)
    a += uni(rng, (0.02, 0.1)) * smooth_field(rng, n, 2.0)  # fine texture (vessels of the lung, noise)
    theta = rng.uniform(-0.4, 0.4)
    c, s = math.cos(theta), math.sin(theta)
    u = (xx - n / 2) * c + (yy - n / 2) * s
    v = -(xx - n / 2) * s + (yy - n / 2) * c
    # Ribs: curved bands with dense cortical rims.
    spacing = uni(rng, (0.08, 0.14)) * n
    curv = uni(rng, (-1.5, 1.5)) / n
    width = spacing * uni(rng, (0.35, 0.55))
    off = rng.uniform(0, spacing)
    d = np.mod(v - curv * u * u + off, spacing) - spacing / 2
    rib = np.clip(1 - (d / (width / 2)) ** 2, 0, None)
    rim = np.exp(-((np.abs(d) - width / 2) ** 2) / (2 * (0.01 * n) ** 2))
    a += uni(rng, (0.05, 0.35)) * (0.6 * np.sqrt(rib) + 0.6 * rim) * (rng.random() < 0.9)
    # Spine: a vertical band of vertebrae.
    if rng.random() < 0.8:
        sx = uni(rng, (0.2, 0.8)) * n
        sw = uni(rng, (0.1, 0.2)) * n
        body = np.clip(1 - ((u + n / 2 - sx) / (sw / 2)) ** 2, 0, None) ** 0.5
        discs = 0.75 + 0.25 * np.cos(2 * math.pi * v / (uni(rng, (0.09, 0.15)) * n))
        a += uni(rng, (0.3, 1.0)) * body * discs
    # Sternal wires, clips and ECG electrodes: small dense objects that are not markers.
    layers = Layers(n)
    for _ in range(rng.integers(0, 4)):
        centre = rng.uniform(0.1, 0.9, 2) * n
        r = uni(rng, (0.01, 0.03)) * n
        t = np.linspace(0, 2 * math.pi, 60)
        layers.add(0.8, np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)], 1), uni(rng, (0.3, 1.2)))
    for _ in range(rng.integers(0, 3)):
        pts = random_curve(rng, rng.uniform(0, 1, 2) * n, rng.uniform(0, 2 * math.pi), uni(rng, (0.2, 0.8)) * n, 1.0, 0.05)
        layers.add(uni(rng, (0.6, 1.5)), pts, uni(rng, (0.1, 0.6)))
    a += layers.render()
    heart = dict(cx=uni(rng, (0.2, 0.8)) * n, cy=uni(rng, (0.2, 0.8)) * n, rx=uni(rng, (0.25, 0.45)) * n,
                 ry=uni(rng, (0.2, 0.4)) * n, density=uni(rng, (0.3, 0.9)), edge=uni(rng, (0.01, 0.04)) * n)
    diaphragm = dict(y0=uni(rng, (0.55, 1.2)) * n, curv=uni(rng, (0.5, 2.0)) / n, xc=uni(rng, (0.2, 0.8)) * n,
                     density=uni(rng, (0.5, 1.5)), edge=uni(rng, (0.01, 0.03)) * n)
    return a, heart, diaphragm
