// The MCP page: every profile's MCP servers and their tools, rendered by
// the daemon (every name, description and diff a server chose already
// escaped as text) and put in place here. Enable, Disable and Approve
// post to the daemon, which takes them through the REST API's own path
// and audits them. The page is fetched again when the daemon's event
// stream says an MCP record was written (event "mcp"); no polling.
'use strict';
(function () {
  var servers = document.getElementById('servers');
  var status = document.getElementById('mcp-status');
  var live = document.getElementById('live');
  if (!servers || !window.ringlet.signedIn) {
    return;
  }
  var src = servers.getAttribute('data-src');

  // load fetches the servers again (ringlet.serial: one at a time).
  var load = window.ringlet.serial(function () {
    return window.ringlet.request(src).then(function (r) {
      if (r === null) {
        return null;
      }
      return r.text().then(function (html) {
        if (r.ok) {
          servers.innerHTML = html;
        } else {
          status.innerHTML = html; // the daemon's refusal, escaped as text
        }
      });
    }).catch(function () {
      status.textContent = 'The daemon did not answer.';
    });
  });

  function serverPath(b) {
    return '/ui/mcp/servers/' + encodeURIComponent(b.getAttribute('data-profile')) + '/' +
      encodeURIComponent(b.getAttribute('data-server') || b.getAttribute('data-approve'));
  }

  // change posts a change and shows the daemon's refusal, if any; the
  // page is fetched again (the change's record also says so).
  function change(b, path) {
    b.disabled = true;
    status.textContent = '';
    window.ringlet.post(path).then(function (r) {
      if (r === null) {
        return null;
      }
      if (r.ok) {
        load();
        return null;
      }
      return r.text().then(function (html) {
        status.innerHTML = html; // escaped by the daemon
        b.disabled = false;
        load();
      });
    }).catch(function () {
      status.textContent = 'The daemon did not answer.';
      b.disabled = false;
    });
  }

  servers.addEventListener('click', function (e) {
    var b = e.target.closest('button');
    if (!b) {
      return;
    }
    if (b.classList.contains('toggle')) {
      var q = new URLSearchParams({ tool: b.getAttribute('data-tool'), enable: b.getAttribute('data-enable') });
      if (b.hasAttribute('data-kind')) {
        q.set('kind', b.getAttribute('data-kind'));
      }
      change(b, serverPath(b) + '/tools?' + q.toString());
    } else if (b.classList.contains('approve')) {
      change(b, serverPath(b) + '/approve?' + new URLSearchParams({ observed: b.getAttribute('data-observed') }).toString());
    }
  });

  window.ringlet.stream('/ui/events', {
    open: function () {
      live.textContent = 'live';
      load(); // what changed while it was not connected
    },
    mcp: load,
    error: function () {
      live.textContent = 'reconnecting…';
    }
  });
})();
