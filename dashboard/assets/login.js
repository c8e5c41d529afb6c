// Exchanges the one-time code in the URL's fragment (never sent to a
// server, never in a Referer) for a login: a cookie and the page key,
// kept in this origin's sessionStorage (ui.js sends it with every
// request), then opens the dashboard. The fragment is dropped from the address bar and history
// first, so the code does not linger there.
'use strict';
(function () {
  var status = document.getElementById('login-status');
  var params = new URLSearchParams(location.hash.slice(1));
  var code = params.get('code');
  history.replaceState(null, '', location.pathname);
  if (!code) {
    status.textContent = 'No login code in this link.';
    return;
  }
  fetch('/ui/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ code: code })
  }).then(function (r) {
    if (!r.ok) {
      status.textContent = 'This login link is not valid (used or expired). Run ringlet ui again.';
      return null;
    }
    return r.json().then(function (login) {
      sessionStorage.setItem('ringlet-ui-key', login.key);
      location.replace('/ui/');
    });
  }).catch(function () {
    status.textContent = 'The daemon did not answer. Is it running?';
  });
})();
