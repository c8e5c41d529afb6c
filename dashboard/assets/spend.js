// The Spend page: a plot by profile and one by model (uPlot), each with
// the table behind it, rendered by the daemon, and its CSV. The range,
// bucket and metric come from the page's selects. The daemon's event
// stream says when a provider request was recorded, and the plots and
// tables are fetched again: no polling. Every request carries the
// login's page key (ui.js).
//
// Names (profiles, models: agents choose those) reach uPlot as series
// labels, which it sets with textContent; the tables are the daemon's
// html/template output. No markup is built from data here.
'use strict';
(function () {
  var live = document.getElementById('live');
  var status = document.getElementById('spend-status');
  var controls = document.getElementById('spend-controls');
  if (!controls || !window.ringlet.signedIn) {
    return;
  }
  // Colours with a contrast of at least 3:1 on white, one per series.
  var palette = ['#0b5394', '#a31515', '#2e7d32', '#6a1b9a', '#b45f06', '#00695c',
    '#ad1457', '#37474f', '#4e342e', '#1565c0', '#827717', '#5d4037'];
  var metricNames = { usd: 'cost (USD)', input: 'input tokens', output: 'output tokens' };
  var plots = {};
  var data = {};

  function value(name) {
    return document.getElementById(name).value;
  }

  function query(by) {
    return '?' + new URLSearchParams({ by: by, bucket: value('spend-bucket'), range: value('spend-range') }).toString();
  }

  function sections() {
    return Array.prototype.slice.call(document.querySelectorAll('section.spend'));
  }

  // draw (re)draws the plot of section by from its last data.
  function draw(by) {
    var p = data[by];
    var el = document.getElementById('plot-' + by);
    if (plots[by]) {
      plots[by].destroy();
      delete plots[by];
    }
    if (!p || typeof uPlot === 'undefined') {
      return;
    }
    var metric = value('spend-metric');
    var series = [{}];
    var columns = [p.x];
    p.series.forEach(function (s, i) {
      series.push({
        label: s.label,
        stroke: palette[i % palette.length],
        width: 2,
        value: function (u, v) { return v === null || v === undefined ? '—' : (metric === 'usd' ? '$' + v.toFixed(4) : String(v)); }
      });
      columns.push(s[metric]);
    });
    p.budgets.forEach(function (b) {
      if (b.metric !== metric) {
        return;
      }
      var i = -1;
      p.series.forEach(function (s, j) {
        if (s.name === b.name) {
          i = j;
        }
      });
      series.push({
        label: 'budget ' + b.name + ' (' + b.period + ')',
        stroke: i >= 0 ? palette[i % palette.length] : '#555555',
        width: 2,
        dash: [8, 6],
        points: { show: false },
        value: function () { return metric === 'usd' ? '$' + b.cap : String(b.cap); }
      });
      columns.push(p.x.map(function () { return b.cap; }));
    });
    plots[by] = new uPlot({
      width: Math.max(el.clientWidth, 320),
      height: 300,
      scales: { x: { time: true } },
      axes: [{}, { label: metricNames[metric], size: 80 }],
      series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); }
    }, columns, el);
    el.setAttribute('data-series', String(series.length - 1));
  }

  function load(section) {
    var by = section.getAttribute('data-by');
    var q = query(by);
    return Promise.all([
      window.ringlet.request('/ui/spend/plot' + q).then(function (r) {
        return r === null ? null : r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); });
      }),
      window.ringlet.request('/ui/spend/table' + q).then(function (r) {
        return r === null ? null : r.ok ? r.text() : r.text().then(function (t) { throw new Error(t); });
      })
    ]).then(function (got) {
      if (got[0] === null || got[1] === null) {
        return;
      }
      data[by] = got[0];
      draw(by);
      document.getElementById('table-' + by).innerHTML = got[1];
    });
  }

  // refresh fetches every plot and table again (ringlet.serial: one
  // round at a time).
  var refresh = window.ringlet.serial(function () {
    return Promise.all(sections().map(load)).then(function () {
      status.textContent = '';
      document.body.setAttribute('data-spend-loaded', String(Number(document.body.getAttribute('data-spend-loaded') || '0') + 1));
    }, function (e) {
      status.textContent = 'The spend could not be read: ' + e.message;
    });
  });

  controls.addEventListener('change', function (e) {
    if (e.target.id === 'spend-metric') {
      sections().forEach(function (s) { draw(s.getAttribute('data-by')); });
      return;
    }
    // Hourly buckets reach back 30 days at most.
    var range = document.getElementById('spend-range');
    if (value('spend-bucket') === 'hour' && (range.value === '90d' || range.value === '365d')) {
      range.value = '30d';
    }
    refresh();
  });

  // The CSV of a plot's table, fetched with the page key and saved.
  document.addEventListener('click', function (e) {
    var button = e.target.closest('button[data-csv]');
    if (!button) {
      return;
    }
    var by = button.getAttribute('data-csv');
    window.ringlet.request('/ui/spend/csv' + query(by)).then(function (r) {
      if (r === null) {
        return null;
      }
      if (!r.ok) {
        throw new Error('the daemon answered ' + r.status);
      }
      var name = 'ringlet-spend.csv';
      var m = /filename="([A-Za-z0-9._-]+)"/.exec(r.headers.get('Content-Disposition') || '');
      if (m) {
        name = m[1];
      }
      return r.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement('a');
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
      });
    }).catch(function (err) {
      status.textContent = 'The CSV could not be downloaded: ' + err.message;
    });
  });

  window.addEventListener('resize', function () {
    sections().forEach(function (s) {
      var by = s.getAttribute('data-by');
      if (plots[by]) {
        plots[by].setSize({ width: Math.max(document.getElementById('plot-' + by).clientWidth, 320), height: 300 });
      }
    });
  });

  window.ringlet.stream('/ui/events', {
    open: function () {
      live.textContent = 'live';
      refresh(); // what changed while it was not connected
    },
    usage: refresh,
    error: function () {
      live.textContent = 'reconnecting…';
    }
  });
})();
