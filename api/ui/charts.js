// Line charts as SVG, drawn here. The x axis is always the last hour ending now, so a chart
// does not jump as samples arrive; the drawing keeps its size (no layout shift).

import { h, s, setText } from './dom.js';

const W = 600;
const H = 130;
const PAD = { left: 60, right: 8, top: 8, bottom: 18 };

/** A chart with a caption; returns {el, draw(series)} where series is
 *  [{name, className, points: [[timeMs, value|null], …]}]. */
export function lineChart({ title, unit, format }) {
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'none' });
  const label = s('title');
  svg.append(label);
  const legend = h('span', { class: 'muted small' });
  const latest = h('span', { class: 'num small' });
  const el = h('div', { class: 'chart' },
    h('figure', {},
      h('figcaption', {}, h('span', {}, h('strong', { text: title }), ' ', legend), latest),
      svg));
  const plot = s('g');
  svg.append(plot);

  function draw(series, windowMs = 3600_000, now = Date.now()) {
    const x0 = now - windowMs;
    let max = 0;
    for (const one of series) for (const [, v] of one.points) if (v !== null && v > max) max = v;
    const top = niceTop(max);
    const x = (t) => PAD.left + ((t - x0) / windowMs) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
    const parts = [];
    for (const frac of [0, 0.5, 1]) {
      const gy = y(top * frac);
      parts.push(s('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: gy, y2: gy }));
      parts.push(s('text', { class: 'label', x: PAD.left - 4, y: gy + 4, 'text-anchor': 'end', text: format(top * frac) }));
    }
    parts.push(s('text', { class: 'label', x: PAD.left, y: H - 3, text: '−60 min' }));
    parts.push(s('text', { class: 'label', x: (PAD.left + W - PAD.right) / 2, y: H - 3, 'text-anchor': 'middle', text: '−30 min' }));
    parts.push(s('text', { class: 'label', x: W - PAD.right, y: H - 3, 'text-anchor': 'end', text: 'now' }));
    for (const one of series) {
      // a null value (no traffic: no latency) breaks the line
      let d = '';
      let pen = false;
      for (const [t, v] of one.points) {
        if (t < x0 || v === null) { pen = false; continue; }
        d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
        pen = true;
      }
      if (d) parts.push(s('path', { class: one.className, d, 'vector-effect': 'non-scaling-stroke' }));
      // a lone sample shows as a dot
      const lone = one.points.filter(([t, v]) => t >= x0 && v !== null);
      if (lone.length === 1) parts.push(s('circle', { class: one.className, cx: x(lone[0][0]), cy: y(lone[0][1]), r: 2 }));
    }
    plot.replaceChildren(...parts);
    const words = series.map((one) => {
      const values = one.points.filter(([, v]) => v !== null).map(([, v]) => v);
      const last = values.length ? values[values.length - 1] : null;
      const peak = values.length ? Math.max(...values) : null;
      return { name: one.name, className: one.className, last, peak };
    });
    setText(label, `${title}, last hour: ${words.map((w) => `${w.name} now ${w.last === null ? 'none' : format(w.last)}, peak ${w.peak === null ? 'none' : format(w.peak)}`).join('; ')}`);
    legend.replaceChildren(...(series.length > 1 ? series.map((one) => h('span', {},
      h('span', { class: `swatch ${one.className}`, 'aria-hidden': 'true' }), `${one.name} `)) : [unit]));
    setText(latest, words.map((w) => `${series.length > 1 ? `${w.name} ` : ''}${w.last === null ? '—' : format(w.last)}`).join(' · '));
  }

  return { el, draw };
}

function niceTop(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}
