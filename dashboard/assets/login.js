// Exchanges the one-time code in the URL's fragment (never sent to a
// server, never in a Referer) for a login cookie, then opens the
// dashboard. The fragment is dropped from the address bar and history
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
    if (r.ok) {
      location.replace('/ui/');
      return;
    }
    status.textContent = 'This login link is not valid (used or expired). Run ringlet ui again.';
  }, function () {
    status.textContent = 'The daemon did not answer. Is it running?';
  });
})();
