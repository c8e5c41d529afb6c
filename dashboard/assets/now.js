// Keeps the Now page's table current: the daemon's event stream says
// when a session changed, and the rows are fetched again, rendered by
// the daemon (every value in them already escaped as text). No polling.
'use strict';
(function () {
  var rows = document.getElementById('sessions');
  var live = document.getElementById('live');
  if (!rows) {
    return;
  }
  var src = rows.getAttribute('data-src');
  var busy = false;
  var again = false;

  function signedOut() {
    location.assign('/ui/');
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(src, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) {
        signedOut();
        return null;
      }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null) {
        rows.innerHTML = html;
      }
    }).catch(function () {}).finally(function () {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }

  var events = new EventSource('/ui/events');
  events.addEventListener('open', function () {
    live.textContent = 'live';
    refresh(); // what changed while it was not connected
  });
  events.addEventListener('sessions', refresh);
  events.addEventListener('end', function () {
    events.close();
    signedOut();
  });
  events.addEventListener('error', function () {
    if (events.readyState === EventSource.CLOSED) {
      // Refused: the login ended.
      signedOut();
      return;
    }
    live.textContent = 'reconnecting…';
  });
})();
