// The terminal page: a remote agent's terminal ('profiles run --remote')
// in xterm.js, over the same WebSocket as 'ringlet terminal attach'.
// Binary messages carry the terminal's bytes both ways (the scrollback
// comes first); text messages carry JSON control messages: a resize when
// the window's size changes. The socket carries the login's page key
// (ringlet.socket); when the agent exits or the login ends, the daemon
// closes it and says why.
'use strict';
(function () {
  var el = document.getElementById('terminal');
  var state = document.getElementById('terminal-state');
  if (!el || !window.ringlet.signedIn) {
    return;
  }
  // xterm.js writes the CSS it computes (its theme's colours, the cell
  // size) into <style> elements of its own, which the dashboard's CSP
  // blocks: it admits no inline style. The same CSS goes into
  // constructable stylesheets instead, which are the CSSOM (only a
  // script of the page's own can write one) and so no inline style: the
  // CSP stays as strict as on every page. xterm gets an inert <template>
  // in place of each <style>.
  var createElement = document.createElement;
  document.createElement = function (name, options) {
    if (String(name).toLowerCase() !== 'style') {
      return createElement.call(document, name, options);
    }
    var sheet = new CSSStyleSheet();
    var css = '';
    var holder = createElement.call(document, 'template');
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    Object.defineProperty(holder, 'textContent', {
      get: function () {
        return css;
      },
      set: function (v) {
        css = String(v);
        sheet.replaceSync(css);
      }
    });
    holder.remove = function () {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter(function (s) {
        return s !== sheet;
      });
      Element.prototype.remove.call(holder);
    };
    return holder;
  };

  // This page has no event stream: the bar's indicator says nothing.
  var live = document.getElementById('live');
  if (live) {
    live.textContent = '';
  }
  var term = new window.Terminal({
    convertEol: false,
    cursorBlink: false,
    fontFamily: 'ui-monospace, monospace',
    fontSize: 14,
    scrollback: 5000
  });
  // Tab belongs to the program in the terminal (completion), so the
  // keyboard needs another way out: Esc then Tab (or Shift+Tab) moves
  // the focus on, as in CodeMirror. The Esc still reaches the program.
  var leaving = false;
  term.attachCustomKeyEventHandler(function (e) {
    if (e.type !== 'keydown') {
      return true;
    }
    if (e.key === 'Tab' && leaving && !e.ctrlKey && !e.altKey && !e.metaKey) {
      leaving = false;
      return false; // xterm leaves it to the browser: the focus moves
    }
    if (e.key !== 'Shift') {
      leaving = e.key === 'Escape';
    }
    return true;
  });
  var fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();

  var ws = window.ringlet.socket('/ui/terminal/' + encodeURIComponent(el.getAttribute('data-session')) + '/attach');
  ws.binaryType = 'arraybuffer';
  var encoder = new TextEncoder();

  // resize tells the agent the terminal's size (its pty's), and says it.
  function resize() {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
      state.textContent = 'attached, ' + term.cols + ' columns by ' + term.rows + ' rows';
    }
  }

  ws.addEventListener('open', function () {
    resize();
    term.focus();
  });
  ws.addEventListener('message', function (e) {
    if (e.data instanceof ArrayBuffer) {
      term.write(new Uint8Array(e.data));
    }
  });
  ws.addEventListener('close', function (e) {
    state.textContent = e.reason ? 'detached: ' + e.reason : 'detached: the terminal is not available (the session ended, or the login did)';
  });
  term.onData(function (data) {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(encoder.encode(data));
    }
  });
  term.onResize(resize);
  window.addEventListener('resize', function () {
    fit.fit();
  });
})();
