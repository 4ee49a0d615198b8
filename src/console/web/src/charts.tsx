import { useEffect, useId, useRef } from 'react';
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LineController, LineElement, LinearScale, PointElement, Tooltip,
  type ChartConfiguration,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, Legend, LineController, LineElement, LinearScale, PointElement, Tooltip);

export interface Series { label: string; data: number[]; color: string; type?: 'bar' | 'line' }

/**
 * A chart (Chart.js on a canvas) with its text alternative: a one-sentence summary as the
 * canvas's accessible name and caption, and the same numbers as a table under "Data table".
 */
export function ChartFigure({ title, summary, labels, series, type = 'bar', horizontal = false, unit = '' }: {
  title: string; summary: string; labels: string[]; series: Series[]; type?: 'bar' | 'line'; horizontal?: boolean; unit?: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const id = useId();
  useEffect(() => {
    if (!canvas.current) return;
    const config: ChartConfiguration = {
      type,
      data: {
        labels,
        datasets: series.map((s) => ({
          label: s.label, data: s.data, backgroundColor: s.color, borderColor: s.color, type: s.type ?? type,
          borderWidth: 2, pointRadius: 2, tension: 0.2,
        })),
      } as ChartConfiguration['data'],
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        indexAxis: horizontal ? 'y' : 'x',
        plugins: { legend: { display: series.length > 1, position: 'bottom' } },
        scales: {
          [horizontal ? 'x' : 'y']: { beginAtZero: true, ticks: { precision: 0 }, title: { display: Boolean(unit), text: unit } },
          [horizontal ? 'y' : 'x']: { ticks: { autoSkip: true, maxRotation: 0 } },
        },
      },
    };
    const chart = new Chart(canvas.current, config);
    return () => chart.destroy();
  }, [labels, series, type, horizontal, unit]);
  return (
    <figure className="chart" aria-labelledby={`${id}-t`}>
      <figcaption id={`${id}-t`}><strong>{title}</strong> <span className="muted small">{summary}</span></figcaption>
      <div className="chart-box" style={horizontal ? { height: `${Math.max(140, labels.length * 48 + 60)}px` } : undefined}>
        <canvas ref={canvas} role="img" aria-label={`${title}. ${summary}`}>{summary}</canvas>
      </div>
      <details>
        <summary>Data table</summary>
        <div className="table-wrap">
          <table>
            <caption className="sr-only">{title}</caption>
            <thead><tr><th scope="col">{horizontal ? 'Application' : 'Day'}</th>{series.map((s) => <th key={s.label} scope="col">{s.label}</th>)}</tr></thead>
            <tbody>
              {labels.map((l, i) => (
                <tr key={l}><th scope="row">{l}</th>{series.map((s) => <td key={s.label}>{s.data[i]}{unit && s.data[i] !== undefined ? ` ${unit}` : ''}</td>)}</tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
