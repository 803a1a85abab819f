// tickflow dashboard: symbol list, candlestick chart with overlays, RSI and MACD panes,
// BUY/SELL markers and a cluster panel, kept live by one Server-Sent Events stream
// (/api/v1/stream). No framework; lightweight-charts (vendored) draws the charts.
'use strict';
(function () {
  const LC = window.LightweightCharts;
  const MAX_POINTS = 3000; // rows kept in the page per chart: an open page stays bounded
  const state = {
    token: sessionStorage.getItem('tickflow-token') || '',
    symbols: [], selected: null, timeframe: '1m', timeframes: ['bar'], columns: [],
    rows: [], changes: [], updates: 0, stream: null,
  };
  window.tickflow = state; // for the browser test and for poking around

  const $ = (id) => document.getElementById(id);
  const headers = () => (state.token ? { Authorization: 'Bearer ' + state.token } : {});
  const fmt = (v, d) => (v === null || v === undefined ? '—' : Number(v).toFixed(d));
  const price = (v) => (v === null || v === undefined ? '—' : Math.abs(v) >= 1000 ? v.toFixed(2) : v.toPrecision(6));
  const sec = (ms) => Math.floor(ms / 1000);

  async function get(path) {
    const r = await fetch(path, { headers: headers() });
    if (r.status === 401) { askToken(); throw new Error('unauthorized'); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function askToken() {
    $('auth').style.display = 'block';
    $('token-ok').onclick = () => {
      state.token = $('token').value.trim();
      sessionStorage.setItem('tickflow-token', state.token);
      $('auth').style.display = 'none';
      start();
    };
  }

  // ---- charts
  const theme = {
    layout: { background: { color: '#0f1419' }, textColor: '#d6dde6' },
    grid: { vertLines: { color: '#1c2430' }, horzLines: { color: '#1c2430' } },
    timeScale: { timeVisible: true, secondsVisible: true, borderColor: '#263040' },
    rightPriceScale: { borderColor: '#263040' },
    autoSize: true,
  };
  const priceChart = LC.createChart($('price'), theme);
  const rsiChart = LC.createChart($('rsi'), theme);
  const macdChart = LC.createChart($('macd'), theme);
  const candles = priceChart.addCandlestickSeries({ upColor: '#26a69a', downColor: '#ef5350', borderVisible: false, wickUpColor: '#26a69a', wickDownColor: '#ef5350' });
  const volume = priceChart.addHistogramSeries({ priceScaleId: 'vol', priceFormat: { type: 'volume' } });
  priceChart.priceScale('vol').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const palette = ['#f5c542', '#4a90e2', '#b36ae2', '#e2844a', '#4ae2c1', '#e24a8d'];
  let overlays = {}; let rsiSeries = {}; let macdSeries = {};
  // The RSI and MACD panes follow the price chart's time axis (one way: no feedback loop).
  priceChart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    if (range) [rsiChart, macdChart].forEach((o) => o.timeScale().setVisibleLogicalRange(range));
  });
  [priceChart, rsiChart, macdChart].forEach((c) => c.timeScale().applyOptions({ barSpacing: 8, rightOffset: 4 }));

  function resetIndicatorSeries() {
    for (const s of Object.values(overlays)) priceChart.removeSeries(s);
    for (const s of Object.values(rsiSeries)) rsiChart.removeSeries(s);
    for (const s of Object.values(macdSeries)) macdChart.removeSeries(s);
    overlays = {}; rsiSeries = {}; macdSeries = {};
    let i = 0;
    for (const c of state.columns) {
      if (/^(sma|ema|vwap|bb_upper|bb_middle|bb_lower)/.test(c)) {
        const color = c.startsWith('bb_') ? '#5d6b7e' : palette[i++ % palette.length];
        overlays[c] = priceChart.addLineSeries({ color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false, title: c });
      } else if (/^rsi/.test(c)) {
        rsiSeries[c] = rsiChart.addLineSeries({ color: palette[Object.keys(rsiSeries).length % palette.length], lineWidth: 1, title: c });
      } else if (c === 'macd' || c === 'macd_signal' || /^macd_(\d|signal_)/.test(c)) {
        macdSeries[c] = macdChart.addLineSeries({ color: c.includes('signal') ? '#e2844a' : '#4a90e2', lineWidth: 1, title: c });
      } else if (c === 'macd_hist' || /^macd_hist/.test(c)) {
        macdSeries[c] = macdChart.addHistogramSeries({ color: '#5d6b7e', title: c });
      }
    }
  }

  // One point per second of chart time (lightweight-charts wants strictly increasing times).
  function merge(rows) {
    const out = state.rows;
    for (const r of rows) {
      const t = sec(r.ts);
      const last = out.length ? sec(out[out.length - 1].ts) : -Infinity;
      if (t > last) out.push(r);
      else if (t === last) out[out.length - 1] = r;
      else return false; // an older row changed (a late correction): redraw everything
    }
    return true;
  }

  function point(r) { return { time: sec(r.ts), open: r.open, high: r.high, low: r.low, close: r.close }; }
  function vol(r) { return { time: sec(r.ts), value: r.volume, color: r.close >= r.open ? 'rgba(38,166,154,0.45)' : 'rgba(239,83,80,0.45)' }; }
  function line(r, c) { return r[c] === null || r[c] === undefined ? { time: sec(r.ts) } : { time: sec(r.ts), value: r[c] }; }

  function drawAll() {
    if (state.rows.length > MAX_POINTS) state.rows = state.rows.slice(-MAX_POINTS);
    const rows = state.rows;
    candles.setData(rows.map(point));
    volume.setData(rows.map(vol));
    for (const [c, s] of Object.entries({ ...overlays, ...rsiSeries, ...macdSeries })) s.setData(rows.map((r) => line(r, c)));
    drawMarkers();
  }

  function drawOne(r) {
    candles.update(point(r));
    volume.update(vol(r));
    for (const [c, s] of Object.entries({ ...overlays, ...rsiSeries, ...macdSeries })) s.update(line(r, c));
  }

  function drawMarkers() {
    const first = state.rows.length ? state.rows[0].ts : Infinity;
    const markers = (state.changes || [])
      .filter((c) => c.ts >= first && (c.to === 'BUY' || c.to === 'SELL'))
      .map((c) => c.to === 'BUY'
        ? { time: sec(c.ts), position: 'belowBar', color: '#26a69a', shape: 'arrowUp', text: 'BUY' }
        : { time: sec(c.ts), position: 'aboveBar', color: '#ef5350', shape: 'arrowDown', text: 'SELL' });
    candles.setMarkers(markers);
    $('signals').innerHTML = (state.changes || []).slice(-20).reverse().map((c) =>
      `<div>${c.time} <span class="${c.from}">${c.from}</span> → <span class="${c.to}">${c.to}</span> ${c.rule || ''}</div>`).join('')
      || 'no signal changes retained';
  }

  // ---- symbol list
  function renderSymbols() {
    const q = $('search').value.trim().toUpperCase();
    const rsi = state.columns.find((c) => /^rsi/.test(c));
    $('symbols').innerHTML = state.symbols
      .filter((s) => !q || s.symbol.toUpperCase().includes(q))
      .map((s) => {
        const cls = s.change_pct > 0 ? 'up' : s.change_pct < 0 ? 'down' : '';
        return `<tr data-s="${s.symbol}" class="${s.symbol === state.selected ? 'sel' : ''}"><td>${s.symbol}</td>`
          + `<td>${price(s.close)}</td><td class="${cls}">${fmt(s.change_pct, 2)}</td>`
          + `<td>${rsi ? fmt(s[rsi], 1) : '—'}</td><td class="${s.signal}">${s.signal}</td></tr>`;
      }).join('');
  }
  $('search').addEventListener('input', renderSymbols);
  $('symbols').addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    if (tr) select(tr.dataset.s, state.timeframe);
  });

  function renderTimeframes() {
    $('timeframes').innerHTML = state.timeframes.map((t) =>
      `<button data-tf="${t}" class="${t === state.timeframe ? 'on' : ''}">${t}</button>`).join(' ');
    $('timeframes').querySelectorAll('button').forEach((b) => { b.onclick = () => select(state.selected, b.dataset.tf); });
  }

  // ---- cluster panel (from every process's /status, pushed in the stream)
  function renderCluster(status) {
    $('cluster').innerHTML = (status || []).map((s) => {
      if (s.error) return `<span class="proc">process ${s.process && s.process.id}: ${s.error}</span>`;
      const r = (s.rates && (s.rates.last_10s || s.rates.last_60s)) || {};
      const busy = (s.workers || []).map((w) => w.busy_pct_10s).filter((b) => b !== null && b !== undefined);
      const busyAvg = busy.length ? busy.reduce((a, b) => a + b, 0) / busy.length : null;
      const t = s.totals || {};
      const lag = t.watermark_lag_ms === null || t.watermark_lag_ms === undefined ? '—' : (t.watermark_lag_ms / 1000).toFixed(1) + ' s';
      return `<span class="proc">p${s.process.id}: <b class="rate">${fmt(r.bars_in_per_s, 0)}</b> bars/s in, `
        + `<b>${fmt(r.bars_out_per_s, 0)}</b> out · watermark lag <b>${lag}</b> · partition lag <b>${t.partition_lag ?? 0}</b>`
        + ` · sink backlog <b>${(s.sink && s.sink.backlog) ?? t.backlog ?? 0}</b> · busy <b>${fmt(busyAvg, 0)}%</b></span>`;
    }).join('');
  }

  // ---- selection and history
  async function select(symbol, timeframe) {
    if (!symbol) return;
    state.selected = symbol; state.timeframe = timeframe;
    $('title').textContent = symbol;
    renderTimeframes(); renderSymbols();
    const path = timeframe === 'bar' ? `/api/v1/bars?symbol=${encodeURIComponent(symbol)}&limit=${MAX_POINTS}`
      : `/api/v1/candles?symbol=${encodeURIComponent(symbol)}&timeframe=${timeframe}&limit=${MAX_POINTS}`;
    const [hist, sig] = await Promise.all([get(path), get(`/api/v1/signals?symbol=${encodeURIComponent(symbol)}&timeframe=${timeframe}`)]);
    if (state.selected !== symbol || state.timeframe !== timeframe) return;
    state.rows = []; merge(hist.rows); state.changes = sig.changes;
    drawAll();
    priceChart.timeScale().scrollToRealTime();
    openStream();
  }

  // ---- the live stream: fetch + ReadableStream (so the read token goes in a header)
  function openStream() {
    if (state.stream) state.stream.abort();
    const ctl = new AbortController();
    state.stream = ctl;
    (async () => {
      while (!ctl.signal.aborted) {
        const from = state.rows.length ? state.rows[state.rows.length - 1].ts : '';
        let url = '/api/v1/stream';
        if (state.selected) url += `?symbol=${encodeURIComponent(state.selected)}&timeframe=${state.timeframe}` + (from !== '' ? `&from=${from}` : '');
        try {
          const resp = await fetch(url, { headers: headers(), signal: ctl.signal });
          if (resp.status === 401) { askToken(); return; }
          if (!resp.ok) throw new Error('stream: ' + resp.status);
          const reader = resp.body.getReader();
          const dec = new TextDecoder();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += dec.decode(value, { stream: true });
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
              const data = chunk.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
              if (data) onUpdate(JSON.parse(data));
            }
            if (buf.length > 8 * 1024 * 1024) break; // never buffer without bound
          }
        } catch (e) {
          if (ctl.signal.aborted) return;
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
  }

  function onUpdate(u) {
    state.updates++;
    if (Array.isArray(u.symbols)) { state.symbols = u.symbols; renderSymbols(); }
    renderCluster(u.status);
    if (u.symbol !== state.selected || u.timeframe !== state.timeframe || !Array.isArray(u.rows)) return;
    if (Array.isArray(u.changes)) state.changes = u.changes;
    const before = state.rows.length;
    if (!merge(u.rows) || state.rows.length > MAX_POINTS + 500) drawAll();
    else {
      const fresh = state.rows.slice(Math.max(0, before - 1));
      for (const r of fresh) drawOne(r);
      drawMarkers();
    }
    const last = state.rows[state.rows.length - 1];
    if (last) $('legend').textContent = `${last.time} O ${price(last.open)} H ${price(last.high)} L ${price(last.low)} C ${price(last.close)} · ${last.signal}`;
  }

  async function start() {
    try {
      const s = await get('/api/v1/symbols');
      state.symbols = s.symbols; state.columns = s.columns || []; state.timeframes = ['bar'].concat(s.timeframes || []);
      state.timeframe = state.timeframes[1] || 'bar';
      resetIndicatorSeries();
      renderSymbols(); renderTimeframes();
      // Ask only for a symbol the cluster knows (a 404 would be a console error): one named in
      // the URL may not have had its first bar yet.
      const wanted = new URLSearchParams(location.search).get('symbol') || (s.symbols[0] && s.symbols[0].symbol);
      const first = s.symbols.some((x) => x.symbol === wanted) ? wanted : null;
      const tf = new URLSearchParams(location.search).get('timeframe');
      if (tf && state.timeframes.includes(tf)) state.timeframe = tf;
      if (first) await select(first, state.timeframe); else setTimeout(start, 1000);
    } catch (e) {
      if (e.message !== 'unauthorized') { $('cluster').textContent = 'waiting for the cluster: ' + e.message; setTimeout(start, 2000); }
    }
  }
  start();
})();
