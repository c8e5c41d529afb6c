// What every page of the dashboard shares: the login's page key and the
// requests that carry it.
//
// The login cookie alone opens only a page's shell, which carries no
// data: a browser sends the cookie to every server of 127.0.0.1 it
// visits, whatever the port. Data and changes need the page key too,
// which login.js put in this origin's sessionStorage (kept apart per
// origin, port included: no other server's page reads it) and which goes
// in the X-Ringlet-UI header of every request made here. A page's own
// script uses ringlet.request, ringlet.post and ringlet.stream.
'use strict';
window.ringlet = (function () {
  var KEY = 'ringlet-ui-key';
  var key = sessionStorage.getItem(KEY);

  // signedOut shows the page's notice that this tab is not signed in.
  function signedOut() {
    var page = document.getElementById('page');
    var notice = document.getElementById('signed-out');
    var live = document.getElementById('live');
    if (page) {
      page.hidden = true;
    }
    if (notice) {
      notice.hidden = false;
    }
    if (live) {
      live.textContent = '';
    }
  }

  // ended: the daemon refused the key (the login ended). The shell
  // again: without a cookie it is the sign-in page, with a cookie but
  // no key it shows signedOut.
  function ended() {
    sessionStorage.removeItem(KEY);
    location.assign('/ui/');
  }

  // request fetches path with the page key; it resolves to the response,
  // or to null when the daemon refused the login (and the page moves on).
  function request(path, opts) {
    opts = opts || {};
    var headers = new Headers(opts.headers || {});
    headers.set('X-Ringlet-UI', key || '');
    return fetch(path, {
      method: opts.method || 'GET',
      headers: headers,
      body: opts.body,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error'
    }).then(function (r) {
      if (r.status === 401) {
        ended();
        return null;
      }
      return r;
    });
  }

  function post(path) {
    return request(path, { method: 'POST' });
  }

  // send sends value as JSON (the body the API's handlers take).
  function send(method, path, value) {
    return request(path, { method: method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });
  }

  // problem is the message of an API error answer ({"error": {"message"}}),
  // as text, or what to say when there is none.
  function problem(r, otherwise) {
    return r.json().then(function (v) {
      return v && v.error && typeof v.error.message === 'string' ? v.error.message : otherwise;
    }, function () {
      return otherwise;
    });
  }

  // stream reads the server-sent events of path with the page key
  // (EventSource cannot send a header) and calls handlers[event] for each
  // event, handlers.open when connected and handlers.error when the
  // stream broke (it reconnects after two seconds). An "end" event (the
  // login ended) ends it.
  function stream(path, handlers) {
    var stopped = false;
    function connect() {
      request(path).then(function (r) {
        if (r === null) {
          stopped = true;
          return null;
        }
        if (!r.ok || !r.body) {
          throw new Error('the event stream answered ' + r.status);
        }
        if (handlers.open) {
          handlers.open();
        }
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buf = '';
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              throw new Error('the event stream ended');
            }
            buf += decoder.decode(chunk.value, { stream: true });
            for (var i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
              var name = '';
              buf.slice(0, i).split('\n').forEach(function (line) {
                if (line.indexOf('event:') === 0) {
                  name = line.slice(6).trim();
                }
              });
              buf = buf.slice(i + 2);
              if (name === 'end') {
                stopped = true;
                ended();
                return null;
              }
              if (name && Object.prototype.hasOwnProperty.call(handlers, name)) {
                handlers[name]();
              }
            }
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        if (stopped) {
          return;
        }
        if (handlers.error) {
          handlers.error();
        }
        setTimeout(connect, 2000);
      });
    }
    connect();
  }

  // socket opens a WebSocket to path on this origin. A browser's
  // WebSocket sends no headers of a page's own: the page key goes as the
  // subprotocol pair "ringlet-page, KEY" (never in the address), and the
  // daemon answers with the name alone.
  function socket(path) {
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    return new WebSocket(scheme + location.host + path, ['ringlet-page', key || '']);
  }

  document.addEventListener('DOMContentLoaded', function () {
    var logout = document.getElementById('logout');
    if (logout) {
      logout.addEventListener('click', function () {
        logout.disabled = true;
        post('/ui/logout').then(function (r) {
          if (r !== null) {
            ended();
          }
        }, function () {
          logout.disabled = false;
        });
      });
    }
  });

  if (!key) {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', signedOut);
    } else {
      signedOut();
    }
  }
  // serial makes load (which returns a promise) run one at a time: a
  // call while it runs makes it run once more afterwards, however many
  // calls came meanwhile. The pages fetch their data again this way on
  // each event, without piling requests up.
  function serial(load) {
    var busy = false;
    var again = false;
    function run() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      Promise.resolve().then(load).finally(function () {
        busy = false;
        if (again) {
          again = false;
          run();
        }
      });
    }
    return run;
  }
  return { signedIn: !!key, request: request, post: post, send: send, problem: problem, stream: stream, socket: socket, serial: serial };
})();
