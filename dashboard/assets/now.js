// Keeps the Now page's table current: the daemon's event stream says
// when a session changed, and the rows are fetched again, rendered by
// the daemon (every value in them already escaped as text). No polling.
// Every request carries the login's page key (ui.js).
'use strict';
(function () {
  var rows = document.getElementById('sessions');
  var live = document.getElementById('live');
  if (!rows || !window.ringlet.signedIn) {
    return;
  }
  var src = rows.getAttribute('data-src');
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    window.ringlet.request(src).then(function (r) {
      return r !== null && r.ok ? r.text() : null;
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

  // Kill: the button of a row names its session.
  rows.addEventListener('click', function (e) {
    var button = e.target.closest('button[data-kill]');
    if (!button) {
      return;
    }
    button.disabled = true;
    window.ringlet.post('/ui/sessions/' + encodeURIComponent(button.getAttribute('data-kill')) + '/kill').then(function (r) {
      if (r !== null && !r.ok) {
        button.disabled = false;
        live.textContent = 'the session could not be killed';
      }
      refresh();
    }, function () {
      button.disabled = false;
    });
  });

  window.ringlet.stream('/ui/events', {
    open: function () {
      live.textContent = 'live';
      refresh(); // what changed while it was not connected
    },
    sessions: refresh,
    error: function () {
      live.textContent = 'reconnecting…';
    }
  });
})();
