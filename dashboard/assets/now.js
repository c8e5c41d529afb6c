// Keeps the Now page's table current: a page of sessions at a time, with
// the summary of all, rendered by the daemon (every value in them
// already escaped as text), which filters, counts and pages: the browser
// never holds more than a page of rows. The daemon's event stream says
// when a session changed; the visible page is fetched again, at most
// once a second however many events come (a pending flag and the next
// animation frame, no polling). Every request carries the login's page
// key (ui.js). Only the filter applied (submitted, cleared, or a
// profile of the summary) is asked for, and only the answer to the
// latest ask is shown.
'use strict';
(function () {
  var rows = document.getElementById('sessions');
  var summary = document.getElementById('now-summary');
  var pager = document.getElementById('now-pager');
  var form = document.getElementById('now-filters');
  var live = document.getElementById('live');
  var status = document.getElementById('now-status');
  var heading = document.getElementById('now-h');
  if (!rows || !window.ringlet.signedIn) {
    return;
  }
  var src = rows.getAttribute('data-src');
  var cursor = ''; // '' the first page, else 'after=...' or 'before=...'
  var busy = false;
  var again = false;
  var pending = false; // a refresh is due for the events seen
  var last = 0; // when the last load started (ms)
  var EVERY = 1000; // the least time between refreshes of events
  var asked = 0; // the sequence number of the latest refresh asked for

  // applied is the filter last applied (submit, reset, a profile of the
  // summary): what is typed but not submitted stays out of every query.
  var applied = new URLSearchParams();

  function apply() {
    applied = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (v !== '') {
        applied.set(k, v);
      }
    });
  }

  apply(); // what the page opened with

  function query() {
    var q = new URLSearchParams(applied);
    if (cursor !== '') {
      var i = cursor.indexOf('=');
      q.set(cursor.slice(0, i), cursor.slice(i + 1));
    }
    return q;
  }

  // refocus is where the keyboard was among the rows, kept across a
  // refresh: the session and the control (a Kill button is disabled, and
  // so loses the focus, before its row goes). It is for the first page
  // asked for after the kill (seq above after), never an older one that
  // still holds the killed row.
  var refocus = null; // {f: rowFocus, after: seq}

  function rowFocus(control) {
    var tr = control.closest('tr[data-session]');
    return tr ? { id: tr.getAttribute('data-session'), sel: control.matches('a.terminal') ? 'a.terminal' : 'button.kill' } : null;
  }

  // focusRow puts the focus back on the same control of the same session,
  // else (its row is gone) on the heading: never on the page's body, and
  // never on another session's Kill button, which a second Enter would
  // press.
  function focusRow(f) {
    var c = null;
    rows.querySelectorAll('tr[data-session]').forEach(function (r) {
      if (r.getAttribute('data-session') === f.id) {
        c = r.querySelector(f.sel);
      }
    });
    (c || heading).focus();
  }

  // focusProfile puts the focus back on the summary's button of profile
  // p, else (the profile has no session left) on the heading.
  function focusProfile(p) {
    var c = null;
    summary.querySelectorAll('button[data-profile]').forEach(function (b) {
      if (b.getAttribute('data-profile') === p) {
        c = b;
      }
    });
    (c || heading).focus();
  }

  // put puts a page's parts (the answer to request seq) in place; the
  // focus stays on the pager's button, the summary's profile or the
  // row's control it was on.
  function put(html, seq) {
    var t = document.createElement('template');
    t.innerHTML = html;
    var parts = {};
    t.content.querySelectorAll('[data-part]').forEach(function (e) {
      parts[e.getAttribute('data-part')] = e;
    });
    if (!parts.rows || !parts.summary || !parts.pager) {
      summary.textContent = 'The daemon answered something else than a page of sessions; reload the page.';
      return;
    }
    var active = document.activeElement;
    var focused = active && pager.contains(active) ? active.id : '';
    var profile = active && summary.contains(active) && active.matches('button[data-profile]') ? active.getAttribute('data-profile') : null;
    var inRows = active && rows.contains(active) ? rowFocus(active) : null;
    if (refocus && seq > refocus.after) {
      inRows = refocus.f || inRows;
      refocus = null;
    }
    summary.replaceChildren.apply(summary, Array.prototype.slice.call(parts.summary.childNodes));
    rows.replaceChildren.apply(rows, Array.prototype.slice.call(parts.rows.childNodes));
    pager.replaceChildren.apply(pager, Array.prototype.slice.call(parts.pager.childNodes));
    if (focused !== '') {
      var b = document.getElementById(focused) || pager.querySelector('button');
      if (b) {
        b.focus();
      }
    } else if (profile !== null) {
      focusProfile(profile);
    } else if (inRows) {
      focusRow(inRows);
    }
  }

  // refresh fetches the visible page. Each ask has a number: an answer
  // to an older ask than the latest (the filter, the page or the
  // sessions changed since) is dropped, and the latest one fetched.
  function refresh() {
    asked++;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    last = Date.now();
    var seq = asked;
    window.ringlet.request(src + '?' + query().toString()).then(function (r) {
      if (r === null || seq < asked) {
        return null;
      }
      var html = /^text\/html(;|$)/.test(r.headers.get('Content-Type') || '');
      if (html && (r.ok || r.status === 400)) {
        return r.text().then(function (text) {
          return { ok: r.ok, text: text };
        });
      }
      summary.textContent = 'The daemon could not show the sessions (' + r.status + '); reload the page.';
      return null;
    }).then(function (a) {
      if (a === null || seq < asked) {
        return;
      }
      if (a.ok) {
        put(a.text, seq);
      } else {
        summary.innerHTML = a.text; // the daemon's refusal, one line escaped as text
      }
    }).catch(function () {
      live.textContent = 'the daemon did not answer';
    }).finally(function () {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }

  // changed: a session changed. The page is fetched again once, in the
  // first animation frame at least EVERY ms after the last load; events
  // meanwhile are folded into it.
  function changed() {
    if (pending) {
      return;
    }
    pending = true;
    setTimeout(function () {
      requestAnimationFrame(function () {
        pending = false;
        refresh();
      });
    }, Math.max(0, last + EVERY - Date.now()));
  }

  // first applies the form's filter and shows its first page.
  function first() {
    apply();
    cursor = '';
    refresh();
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    first();
  });
  form.addEventListener('reset', function () {
    setTimeout(first, 0); // after the fields are cleared
  });

  pager.addEventListener('click', function (e) {
    var b = e.target.closest('button');
    if (!b) {
      return;
    }
    if (b.hasAttribute('data-after')) {
      cursor = 'after=' + b.getAttribute('data-after');
    } else if (b.hasAttribute('data-before')) {
      var before = b.getAttribute('data-before');
      cursor = before === '' ? '' : 'before=' + before;
    }
    refresh();
  });

  // A profile of the summary: its sessions.
  summary.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-profile]');
    if (b) {
      form.elements.profile.value = b.getAttribute('data-profile');
      first();
    }
  });

  // Kill: the button of a row names its session.
  rows.addEventListener('click', function (e) {
    var button = e.target.closest('button[data-kill]');
    if (!button) {
      return;
    }
    var id = button.getAttribute('data-kill');
    var keyboard = document.activeElement === button ? rowFocus(button) : null;
    button.disabled = true;
    window.ringlet.post('/ui/sessions/' + encodeURIComponent(id) + '/kill').then(function (r) {
      if (r !== null && !r.ok) {
        button.disabled = false;
        live.textContent = 'the session could not be killed';
      } else if (r !== null) {
        status.textContent = 'Session ' + id + ' killed.';
        refocus = { f: keyboard, after: asked };
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
    sessions: changed,
    error: function () {
      live.textContent = 'reconnecting…';
    }
  });
})();
