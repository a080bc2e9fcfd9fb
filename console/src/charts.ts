/** Charts from the CDR table: calls per minute, ASR/ACD per hour, revenue per day (uPlot), top destinations. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { call, type Me } from './api';
import { field, h, status, table } from './dom';

interface Charts {
  calls: number;
  perMinute: number[][];
  asrAcd: number[][];
  revenuePerDay: number[][];
  topDestinations: Array<Record<string, unknown>>;
}

function chart(root: HTMLElement, title: string, data: number[][], series: uPlot.Series[]): uPlot {
  const box = h('figure', { class: 'chart', role: 'img', 'aria-label': title }, h('figcaption', {}, title));
  root.append(box);
  const width = Math.max(280, Math.min(900, root.clientWidth - 16));
  return new uPlot(
    { width, height: 220, series: [{}, ...series], scales: { x: { time: true } } },
    data as uPlot.AlignedData,
    box,
  );
}

export function chartsPage(root: HTMLElement, _me: Me): () => void {
  const days = h('select', { name: 'days' }, ...['1', '7', '31'].map((d) => h('option', { value: d }, `${d} day(s)`)));
  days.value = '7';
  const st = status();
  const out = h('div', { class: 'charts' });
  const plots: uPlot[] = [];
  const load = () => {
    st.textContent = 'loading…';
    call<Charts>(`charts?days=${days.value}`).then(
      (c) => {
        for (const p of plots.splice(0)) p.destroy();
        out.replaceChildren();
        st.textContent = `${c.calls} calls`;
        plots.push(
          chart(out, 'Calls per minute', c.perMinute, [{ label: 'calls', stroke: '#1f5fbf', width: 2 }]),
          chart(out, 'ASR (%) and ACD (s) per hour', c.asrAcd, [
            { label: 'ASR %', stroke: '#1b7f3b', width: 2 },
            { label: 'ACD s', stroke: '#a4480f', width: 2 },
          ]),
          chart(out, 'Revenue per day', c.revenuePerDay, [{ label: 'revenue', stroke: '#6b2fa6', width: 2 }]),
        );
        out.append(
          h('h2', {}, 'Top destinations'),
          table(['prefix', 'calls', 'minutes'], c.topDestinations, 'Top destinations'),
        );
      },
      (e: Error) => (st.textContent = e.message),
    );
  };
  days.addEventListener('change', load);
  root.append(field('Period', days), st, out);
  load();
  return () => plots.forEach((p) => p.destroy());
}
