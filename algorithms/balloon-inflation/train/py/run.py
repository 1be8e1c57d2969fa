"""One randomized angioplasty run: scene, timeline, motion, image formation and stored encoding."""
import math
import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from profiles import CONFOUNDERS, Profile
from scene import Layers, anatomy, loguni, random_curve, resample, uni

SIGMAS = np.array([0.6, 0.9, 1.3, 2.0, 3.0, 4.5, 7.0])


def q_sigma(s):
    return float(SIGMAS[np.argmin(np.abs(SIGMAS - s))])


def inflation_timeline(rng, p: Profile, t, k):
    """Inflated fraction per frame time for k inflations, one per slot of the run."""
    f = np.zeros_like(t)
    if k == 0:
        return f
    d = t[-1] + (t[1] - t[0])
    slot = d / k
    for i in range(k):
        hold = uni(rng, p.hold) * slot
        fill = uni(rng, (0.04, 0.15)) * slot
        empty = uni(rng, (0.04, 0.15)) * slot
        start = i * slot + rng.uniform(0.05, 0.95) * max(0.0, slot - hold - fill - empty)
        if i == 0 and k == 1 and rng.random() < 0.08:
            start = -fill - rng.uniform(0, 0.3) * hold  # already inflated when the run starts
        a = np.clip((t - start) / fill, 0, 1)
        b = np.clip(1 - (t - start - fill - hold) / empty, 0, 1)
        f = np.maximum(f, np.minimum(a, b))
    return f


def stretches(on):
    """The maximal runs of True frames, as inclusive (first, last) frame pairs."""
    out, f = [], 0
    while f < len(on):
        if on[f]:
            e = f
            while e + 1 < len(on) and on[e + 1]:
                e += 1
            out.append((f, e))
            f = e + 1
        else:
            f += 1
    return out


# An inflation seen in fewer frames cannot be told from noise (nor can the shipped rule report it).
MIN_SEEN_FRAMES = 3


def inflation_events(frac, visible):
    """The true events: one per inflation (inflated fraction >= 0.5), from the first to the last
    frame in which it can be seen (both markers in the exposed field), when seen in at least
    MIN_SEEN_FRAMES frames. Markers that leave the field for a while (table pan, motion) do not
    split an inflation into several: a physician counts one."""
    events = []
    for a, b in stretches(frac >= 0.5):
        seen = np.flatnonzero(visible[a:b + 1])
        if len(seen) >= MIN_SEEN_FRAMES:
            events.append((a + int(seen[0]), a + int(seen[-1])))
    return events


def visible_stretches(frac, visible):
    """The stretches of frames both inflated and seen: the true events before 3.2.0's figures
    were re-scored (one inflation split wherever the markers left the field, even for a frame)."""
    return stretches((frac >= 0.5) & visible)


def injection(rng, t, d, near_catheter):
    """Contrast concentration per frame and the reach of the bolus front (px of path)."""
    t0 = rng.uniform(-0.2, 0.6) * d
    rise = rng.uniform(0.15, 0.4) * d
    fall = rng.uniform(0.3, 1.0) * d
    c = np.clip((t - t0) / rise, 0, 1) * np.clip(1 - (t - t0 - rise) / fall, 0, 1) ** 0.7
    return c, t0, rise


def render_run(seed: int, p: Profile, kind: str | None = None):
    rng = np.random.default_rng(seed)
    size = int(rng.choice(p.size_list)) if p.size_list else int(rng.integers(p.sizes[0], p.sizes[1] + 1))
    # Large frames: the attenuation map is rendered at 1/2 or 1/3 and interpolated (it is smooth
    # at that scale); photon noise, blur, field and encoding are applied at the full size.
    factor = max(1, round(size / 200))
    S = size // factor
    fps = float(rng.choice(p.fps))
    T = int(rng.integers(p.frames[0], p.frames[1] + 1))
    t = np.arange(T) / fps
    d = T / fps
    if kind is None:
        kind = 'inflation' if rng.random() < 0.55 else str(rng.choice(CONFOUNDERS))
    k = int(rng.choice([x for x in p.inflations if x > 0])) if kind == 'inflation' else 0
    tags = {kind}
    if kind == 'inflation':
        for extra in ('bolus', 'table-pan', 'buddy-wire', 'crimped-stent', 'deployed-stent', 'balloon-advanced'):
            if rng.random() < 0.12:
                tags.add(extra)
    margin = int(0.2 * S)
    n = S + 2 * margin
    a_static, heart, diaphragm = anatomy(rng, p, n)
    # Vessel tree from an ostium, the guide catheter to the ostium, the wire down the main vessel.
    ostium = rng.uniform(0.25, 0.75, 2) * S + margin
    head = rng.uniform(0, 2 * math.pi)
    r_v = uni(rng, (0.006, 0.018)) * S
    main = random_curve(rng, ostium, head, uni(rng, (0.5, 1.0)) * S, 1.0, uni(rng, (0.02, 0.12)))
    branches = [(main, r_v)]
    for _ in range(rng.integers(2, 7)):
        parent, pr = branches[rng.integers(0, len(branches))]
        at = parent[rng.integers(0, len(parent))]
        branches.append((random_curve(rng, at, rng.uniform(0, 2 * math.pi), uni(rng, (0.1, 0.4)) * S, 1.0, uni(rng, (0.03, 0.15))), pr * uni(rng, (0.5, 0.85))))
    vessels = []
    for pts, r in branches:
        q, s = resample(pts, 0.7)
        d0 = np.hypot(*(q[0] - ostium)) + s
        vessels.append((q, r, d0))
    vessel_peak = uni(rng, p.vessel)
    cath = random_curve(rng, ostium, head + math.pi + rng.normal(0, 0.6), 1.5 * S, 1.0, 0.03)[::-1]
    cath, _ = resample(cath, 0.7)
    cath_r = uni(rng, (0.006, 0.014)) * S
    cath_peak = uni(rng, (0.15, 0.5))
    wire_path, wire_s = resample(main, 0.5)
    wire_peak = uni(rng, (0.15, 0.6))
    with_balloon = ('inflation', 'crimped-stent', 'balloon-advanced', 'balloon-static', 'buddy-wire', 'table-pan')
    has_balloon = kind != 'no-device' and (kind in with_balloon or rng.random() < 0.5)
    shaft_peak = uni(rng, (0.04, 0.12))
    buddy_peak = wire_peak * uni(rng, (0.6, 1.0))
    spacing = uni(rng, p.spacing) * S
    span = wire_s[-1]
    if spacing > 0.8 * span:
        spacing = 0.8 * span
    b_start = rng.uniform(0.05, 0.95) * (span - spacing)
    for _ in range(30):
        # Most balloons are where the operator looks: both markers inside the central field.
        ends = wire_path[[int(b_start / 0.5), min(len(wire_path) - 1, int((b_start + spacing) / 0.5))]] - margin
        if np.all((ends > 0.1 * S) & (ends < 0.9 * S)):
            break
        b_start = rng.uniform(0.05, 0.95) * (span - spacing)
    advance = 'balloon-advanced' in tags
    adv_from = b_start - uni(rng, (0.1, 0.4)) * S if advance else b_start
    adv_t0, adv_t1 = sorted(rng.uniform(0, d, 2))
    if kind == 'inflation' and advance:
        adv_t1 = min(adv_t1, 0.3 * d)
        adv_t0 = min(adv_t0, adv_t1 * 0.5)
    balloon_peak = uni(rng, p.balloon)
    r_b = r_v * uni(rng, (0.8, 1.3))
    marker_peak = uni(rng, p.marker)
    marker_sigma = uni(rng, (0.003, 0.006)) * S
    frac = inflation_timeline(rng, p, t, k)
    crimped = 'crimped-stent' in tags
    crimp_peak = uni(rng, (0.15, 0.5))
    stents = []
    if 'deployed-stent' in tags:
        ves = vessels[rng.integers(0, len(vessels))]
        lo = rng.integers(0, max(1, len(ves[0]) - 20))
        stents.append((ves[0][lo: lo + int(uni(rng, (0.05, 0.2)) * S / 0.7)], ves[1], uni(rng, (0.08, 0.3))))
    buddy = None
    if 'buddy-wire' in tags:
        other = vessels[rng.integers(0, len(vessels))][0]
        buddy = np.concatenate([wire_path[: len(wire_path) // 4], other + rng.normal(0, 0.3, other.shape)])
    # Contrast injections: a full bolus, a puff near the catheter, or a check injection during a run with a balloon.
    boluses = []
    if kind in ('bolus', 'bolus-near-catheter') or ('bolus' in tags) or rng.random() < 0.1:
        near = kind == 'bolus-near-catheter' or rng.random() < 0.3
        for _ in range(1 if rng.random() < 0.7 else 2):
            c, t0, rise = injection(rng, t, d, near)
            reach_speed = uni(rng, (0.5, 3.0)) * S
            reach_max = uni(rng, (0.04, 0.2)) * S if near else 10 * S
            boluses.append((c, t0, reach_speed, reach_max))
    # Motion.
    hr = uni(rng, (0.8, 2.0))
    ph = rng.uniform(0, 2 * math.pi)
    c_amp = uni(rng, p.cardiac) * S
    c_dir = rng.normal(size=2)
    c_dir /= np.linalg.norm(c_dir)
    c_k = uni(rng, (0.0, 0.06))
    r_amp = uni(rng, p.resp) * S
    r_per = uni(rng, (2.5, 6.0))
    r_dir = np.array([rng.normal(0, 0.3), 1.0])
    pan = np.zeros((T, 2))
    if 'table-pan' in tags:
        p0, p1 = sorted(rng.uniform(0, d, 2))
        vec = rng.normal(size=2)
        vec = vec / np.linalg.norm(vec) * uni(rng, (0.05, 0.3)) * S
        pan = np.clip((t - p0) / max(p1 - p0, 0.3), 0, 1)[:, None] * vec[None]
    # Field: shutters and intensifier circle (transmission multiplier), fixed to the detector.
    yy, xx = np.mgrid[0:S, 0:S].astype(float)
    fy, fx = np.mgrid[0:size, 0:size].astype(float) * (S / size)
    field = np.ones((size, size))
    edge = uni(rng, (0.5, 3.0))
    for side in range(4):
        if rng.random() < 0.5:
            cover = uni(rng, p.shutter) * S
            tilt = rng.normal(0, 0.03)
            coord = [fx, fy, S - 1 - fx, S - 1 - fy][side] + tilt * ([fy, fx, fy, fx][side] - S / 2)
            k_sh = uni(rng, (2.5, 8.0)) if rng.random() < 0.85 else uni(rng, (0.5, 1.5))
            field *= np.exp(-k_sh / (1 + np.exp((coord - cover) / edge)))
    circle = rng.random() < 0.4
    electronic_circle = circle and rng.random() < 0.5
    if circle:
        rad = uni(rng, (0.48, 0.72)) * S
        cdist = np.hypot(fx - S / 2 + rng.normal(0, 0.02 * S), fy - S / 2 + rng.normal(0, 0.02 * S))
        outside = 1 / (1 + np.exp(-(cdist - rad) / edge))
        field *= np.exp(-uni(rng, (3.0, 8.0)) * outside)
    # Detector, dose and encoding.
    dose = loguni(rng, p.dose) * (128.0 / size) ** 2
    scatter = uni(rng, p.scatter)
    blur = uni(rng, p.blur)
    bits = int(rng.choice(p.bits))
    top = 2 ** bits - 1
    encoding = str(rng.choice(['linear', 'log', 'log', 'gamma']))
    gamma = uni(rng, p.gamma)
    floor = loguni(rng, p.log_floor)
    fill_range = uni(rng, (0.5, 1.05))
    offset = uni(rng, (0.0, 0.15))
    mono1 = rng.random() < 0.3
    electronic_noise = uni(rng, (0.0, 0.002))
    frames = np.empty((T, size, size), np.uint16)
    visible = np.zeros(T, bool)
    centres = np.full((T, 2), -1.0)
    i_ref = None
    for f in range(T):
        tf = t[f]
        phase = math.sin(2 * math.pi * hr * tf + ph)
        shift = r_amp * math.sin(2 * math.pi * tf / r_per) * r_dir + pan[f]
        hc = np.array([heart['cx'], heart['cy']])

        def move(pts):
            return pts + c_amp * phase * c_dir + c_k * phase * (pts - hc) * 0.3 + shift - margin

        ox, oy = int(round(margin - shift[0])), int(round(margin - shift[1]))
        ox, oy = min(max(ox, 0), n - S), min(max(oy, 0), n - S)
        a = a_static[oy: oy + S, ox: ox + S].copy()
        sc = 1 + 0.05 * phase
        ex = (xx + ox - hc[0]) / (heart['rx'] * sc)
        ey = (yy + oy - hc[1]) / (heart['ry'] * sc)
        a += heart['density'] / (1 + np.exp((np.sqrt(ex * ex + ey * ey) - 1) * heart['rx'] / heart['edge']))
        dy0 = diaphragm['y0'] - oy + 0.3 * shift[1]
        a += diaphragm['density'] / (1 + np.exp(-(yy - dy0 - diaphragm['curv'] * (xx + ox - diaphragm['xc']) ** 2) / diaphragm['edge']))
        layers = Layers(S)
        conc = [b[0][f] for b in boluses]
        for q, r, dist in vessels:
            fill = 0.0
            for (c, t0, speed, reach), cf in zip(boluses, conc):
                front = min(reach, max(0.0, (tf - t0) * speed))
                fill = fill + cf / (1 + np.exp((dist - front) / (0.02 * S)))
            if np.max(fill) > 0.01:
                layers.add(q_sigma(0.8 * r), move(q), vessel_peak * (r / r_v) * np.minimum(fill, 1.2))
        cath_fill = max(conc) if conc else 0.0
        layers.add(q_sigma(0.7 * cath_r), move(cath), cath_peak + 0.6 * vessel_peak * cath_fill)
        if kind != 'no-device':
            layers.add(0.6, move(wire_path), wire_peak)
            layers.add(0.6, move(wire_path[-int(0.03 * S / 0.5) - 2:]), wire_peak * 1.5)
        if buddy is not None:
            layers.add(0.6, move(buddy), buddy_peak)
        for pts, r, pk in stents:
            m = move(pts)
            dirs = np.gradient(m, axis=0)
            nrm = np.stack([-dirs[:, 1], dirs[:, 0]], 1) / (np.linalg.norm(dirs, axis=1, keepdims=True) + 1e-9)
            zig = np.sin(np.arange(len(m)) * 1.7)[:, None]
            for side in (-1, 1):
                layers.add(0.6, m + nrm * r * (side + 0.3 * zig), pk)
        if has_balloon:
            pos = b_start
            if advance:
                pos = adv_from + (b_start - adv_from) * np.clip((tf - adv_t0) / max(adv_t1 - adv_t0, 0.2), 0, 1)
            pos = float(np.clip(pos, 0, span - spacing))
            i0 = int(pos / 0.5)
            i1 = min(len(wire_path) - 1, int((pos + spacing) / 0.5))
            seg = move(wire_path[i0: i1 + 1])
            layers.add(0.6, move(wire_path[: i0 + 1]), shaft_peak)
            u = np.linspace(0, 1, len(seg))
            taper = np.clip(np.minimum(u, 1 - u) / 0.08, 0.2, 1)
            fr = frac[f]
            layers.add(0.6, seg, 0.1 * taper)
            if fr > 0.02:
                layers.add(q_sigma(max(0.6, 0.75 * r_b * fr)), seg, balloon_peak * fr * taper)
            if crimped:
                layers.add(q_sigma(max(0.7, 0.4 * r_b * max(fr, 0.3))), seg[len(seg) // 8: -len(seg) // 8 or None], crimp_peak * (1 - 0.5 * fr))
            for mk in (seg[0], seg[-1]):
                layers.add(q_sigma(marker_sigma), mk[None], marker_peak)
            mks = np.array([seg[0], seg[-1]])
            inside = np.all((mks >= 0) & (mks < S))
            if inside:
                ix = np.clip((mks * size / S).astype(int), 0, size - 1)
                inside = bool(np.all(field[ix[:, 1], ix[:, 0]] > 0.3))
            visible[f] = inside
            centres[f] = (seg[0] + seg[-1]) / 2 * (128.0 / S)
        a += layers.render()
        if factor > 1:
            a = zoom(a, size / S, order=1)
        i = np.exp(-a) * field
        i = i + scatter * float(i.mean())
        i = gaussian_filter(i, blur * factor)
        flick = 1 + rng.normal(0, 0.02)
        counts = rng.poisson(np.maximum(i * dose * flick, 0)) / (dose * flick)
        counts = counts + rng.normal(0, electronic_noise, counts.shape)
        if i_ref is None:
            i_ref = float(np.quantile(i, 0.995))
        y = np.maximum(counts, 0) / i_ref
        if encoding == 'linear':
            v = y * fill_range
        elif encoding == 'gamma':
            v = np.maximum(y, 0) ** gamma * fill_range
        else:
            v = (np.log(np.maximum(y, floor)) - math.log(floor)) / -math.log(floor) * fill_range
        v = offset + (1 - offset) * v
        if electronic_circle:
            v = np.where(cdist > rad, 0.0, v)
        stored = np.clip(np.round(v * top), 0, top)
        if mono1:
            stored = top - stored
        frames[f] = stored.astype(np.uint16)
    events = inflation_events(frac, visible)
    meta = dict(seed=seed, profile=p.name, kind=kind, tags=sorted(tags), size=size, frames=T, fps=fps, bits=bits,
                photometric='MONOCHROME1' if mono1 else 'MONOCHROME2', encoding=encoding, inflations=k,
                spacing=round(spacing / S, 4), events=events, visibleStretches=visible_stretches(frac, visible), circle=bool(circle), dose=round(dose * (size / 128.0) ** 2, 1))
    meta['centres'] = centres.round(2).tolist()
    return frames, meta, visible, frac
