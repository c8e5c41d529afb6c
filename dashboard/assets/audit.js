// The Audit page: a filtered, paged view of the audit log, each page
// rendered by the daemon (every value from the log already escaped as
// text) and put in place here. Pages go back by the cursors of the pages
// before (newer); new records join the newest page, with no filter, when
// the daemon's event stream says some were written. No polling.
'use strict';
(function () {
  var records = document.getElementById('records');
  var form = document.getElementById('filters');
  var status = document.getElementById('audit-status');
  var trace = document.getElementById('trace');
  var verify = document.getElementById('verify');
  var live = document.getElementById('live');
  if (!records || !window.ringlet.signedIn) {
    return;
  }
  var src = records.getAttribute('data-src');
  var cursors = []; // the cursors of the pages newer than this one
  var cursor = ''; // this page's cursor ('' the newest)

  function filter() {
    var q = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (v !== '') {
        q.set(k, v);
      }
    });
    return q;
  }

  // load fetches the page at cursor with the form's filter
  // (ringlet.serial: one at a time).
  var load = window.ringlet.serial(function () {
    var q = filter();
    if (cursor !== '') {
      q.set('cursor', cursor);
    }
    return window.ringlet.request(src + '?' + q.toString()).then(function (r) {
      if (r === null) {
        return null;
      }
      return r.text().then(function (html) {
        if (r.ok) {
          // Records expanded stay expanded when the page is put again.
          var open = {};
          records.querySelectorAll('tr[data-seq] details[open]').forEach(function (d) {
            open[d.closest('tr').getAttribute('data-seq')] = true;
          });
          records.innerHTML = html;
          records.querySelectorAll('tr[data-seq] details').forEach(function (d) {
            d.open = open[d.closest('tr').getAttribute('data-seq')] === true;
          });
          var newer = document.getElementById('newer');
          if (newer) {
            newer.disabled = cursor === '';
          }
          status.textContent = '';
        } else {
          status.innerHTML = html; // the daemon's refusal, escaped as text
        }
      });
    }).catch(function () {
      status.textContent = 'The daemon did not answer.';
    });
  });

  // atHead: the newest page with no filter, which new records join.
  function atHead() {
    return cursor === '' && filter().toString() === '';
  }

  function checkVerify(method) {
    var p = method === 'POST' ? window.ringlet.post('/ui/audit/verify') : window.ringlet.request('/ui/audit/verify');
    return p.then(function (r) {
      return r !== null ? r.text() : null;
    }).then(function (html) {
      if (html !== null) {
        verify.innerHTML = html;
      }
    }).catch(function () {});
  }

  function showTrace(id) {
    window.ringlet.request('/ui/audit/traces/' + encodeURIComponent(id)).then(function (r) {
      return r !== null ? r.text() : null;
    }).then(function (html) {
      if (html !== null) {
        trace.innerHTML = html;
        trace.hidden = false;
        trace.scrollIntoView();
        var close = document.getElementById('trace-close');
        if (close) {
          close.focus();
        }
      }
    }).catch(function () {});
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    cursors = [];
    cursor = '';
    load();
  });
  form.addEventListener('reset', function () {
    setTimeout(function () { // after the fields are cleared
      cursors = [];
      cursor = '';
      load();
    }, 0);
  });

  records.addEventListener('click', function (e) {
    var b = e.target.closest('button');
    if (!b) {
      return;
    }
    if (b.id === 'older') {
      cursors.push(cursor);
      cursor = b.getAttribute('data-cursor');
      load();
    } else if (b.id === 'newer') {
      cursor = cursors.length > 0 ? cursors.pop() : '';
      load();
    } else if (b.hasAttribute('data-trace')) {
      showTrace(b.getAttribute('data-trace'));
    }
  });
  trace.addEventListener('click', function (e) {
    if (e.target.id === 'trace-close') {
      trace.hidden = true;
      trace.textContent = '';
    }
  });
  verify.addEventListener('click', function (e) {
    if (e.target.id === 'verify-all') {
      e.target.disabled = true;
      verify.setAttribute('aria-busy', 'true');
      checkVerify('POST').finally(function () {
        verify.removeAttribute('aria-busy');
      });
    }
  });

  checkVerify('GET');
  window.ringlet.stream('/ui/events', {
    open: function () {
      live.textContent = 'live';
      load(); // what was written while it was not connected
    },
    audit: function () {
      if (atHead()) {
        load();
      }
    },
    error: function () {
      live.textContent = 'reconnecting…';
    }
  });
})();
