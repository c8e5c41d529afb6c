// The Hooks and keys page: the lists are rendered by the daemon (every
// value in them escaped as text) and fetched again when the event stream
// says records were written; the forms send what the API's handlers take
// ('ringlet hooks add', 'hooks test --input', 'keychain set'). The test's
// answer is shown with textContent: hooks' reasons and commands are
// text, never markup. A key typed in the password field is sent once and
// the field cleared at once; no answer carries it back.
'use strict';
(function () {
  var ringlet = window.ringlet;
  var live = document.getElementById('live');
  var hookList = document.getElementById('hook-list');
  var keyList = document.getElementById('key-list');
  if (!hookList || !ringlet.signedIn) {
    return;
  }

  // loader fetches el's list again (ringlet.serial: one at a time; a
  // change meanwhile fetches once more).
  function loader(el) {
    return ringlet.serial(function () {
      return ringlet.request(el.getAttribute('data-src')).then(function (r) {
        return r !== null ? r.text() : null;
      }).then(function (html) {
        if (html !== null) {
          el.innerHTML = html;
        }
      }).catch(function () {});
    });
  }
  var loadHooks = loader(hookList);
  var loadKeys = loader(keyList);

  function say(el, text, bad) {
    el.textContent = text;
    el.classList.toggle('warn', !!bad);
  }

  // answer says what a change's answer was: ok(value) on success, the
  // API's error message otherwise.
  function answer(status, ok) {
    return function (r) {
      if (r === null) {
        return null;
      }
      if (r.ok) {
        return r.json().then(ok);
      }
      return ringlet.problem(r, 'refused (' + r.status + ')').then(function (msg) {
        say(status, msg, true);
      });
    };
  }

  var add = document.getElementById('hook-add');
  var addStatus = document.getElementById('hook-add-status');
  add.addEventListener('submit', function (e) {
    e.preventDefault();
    var f = add.elements;
    var body = { profile: f.profile.value.trim(), event: f.event.value, shell: f.shell.value };
    if (f.match.value.trim() !== '') {
      body.match = f.match.value.trim();
    }
    add.querySelector('button').disabled = true;
    say(addStatus, 'adding…');
    ringlet.send('POST', '/ui/hooks/add', body).then(answer(addStatus, function (h) {
      say(addStatus, 'added hook ' + h.id + ' to profile ' + h.profile);
      f.shell.value = '';
      f.match.value = '';
      loadHooks();
    })).catch(function () {
      say(addStatus, 'the daemon could not be reached', true);
    }).finally(function () {
      add.querySelector('button').disabled = false;
    });
  });

  hookList.addEventListener('click', function (e) {
    var button = e.target.closest('button[data-remove-hook]');
    if (!button) {
      return;
    }
    button.disabled = true;
    var path = '/ui/hooks/' + encodeURIComponent(button.getAttribute('data-profile')) + '/' + encodeURIComponent(button.getAttribute('data-remove-hook'));
    ringlet.request(path, { method: 'DELETE' }).then(answer(addStatus, function (h) {
      say(addStatus, 'removed hook ' + h.id + ' of profile ' + h.profile);
      loadHooks();
    })).catch(function () {
      button.disabled = false;
    });
  });

  var test = document.getElementById('hook-test');
  var result = document.getElementById('hook-test-result');
  // line adds a paragraph of text to the test's result.
  function line(label, text, cls) {
    var p = document.createElement('p');
    var b = document.createElement('strong');
    b.textContent = label + ': ';
    p.appendChild(b);
    p.appendChild(document.createTextNode(text));
    if (cls) {
      p.className = cls;
    }
    result.appendChild(p);
  }
  test.addEventListener('submit', function (e) {
    e.preventDefault();
    var f = test.elements;
    var input;
    try {
      input = JSON.parse(f.input.value);
    } catch (err) {
      result.textContent = '';
      line('Input', 'not JSON: ' + err.message, 'warn');
      return;
    }
    result.textContent = '';
    line('Testing', 'the hooks of profile ' + f.profile.value.trim() + ' run in a sandbox…');
    test.querySelector('button').disabled = true;
    ringlet.send('POST', '/ui/hooks/' + encodeURIComponent(f.profile.value.trim()) + '/test', { input: input }).then(function (r) {
      if (r === null) {
        return null;
      }
      result.textContent = '';
      if (!r.ok) {
        return ringlet.problem(r, 'refused (' + r.status + ')').then(function (msg) {
          line('Error', msg, 'warn');
        });
      }
      return r.json().then(function (v) {
        var d = v.input.current;
        line('Decision', d.allow ? 'allow' : 'deny', d.allow ? '' : 'warn');
        line('Tool', v.input.tool);
        if (d.hook_id) {
          line('Hook', d.hook_id);
        }
        line('Reason', d.reason || (d.allow ? 'no hook refused it' : ''));
      });
    }).catch(function () {
      line('Error', 'the daemon could not be reached', 'warn');
    }).finally(function () {
      test.querySelector('button').disabled = false;
    });
  });

  var set = document.getElementById('key-set');
  var setStatus = document.getElementById('key-set-status');
  set.addEventListener('submit', function (e) {
    e.preventDefault();
    var f = set.elements;
    var key = f.key.value;
    // Out of the page before it is sent: nothing shows it again.
    f.key.value = '';
    var name = f.provider.value.trim() + '/' + f.alias.value.trim();
    set.querySelector('button').disabled = true;
    say(setStatus, 'storing…');
    ringlet.send('POST', '/ui/keys/' + encodeURIComponent(f.provider.value.trim()) + '/' + encodeURIComponent(f.alias.value.trim()), { key: key }).then(answer(setStatus, function (c) {
      say(setStatus, 'stored ' + name + ' in the ' + c.backend + ' backend' + (c.sessions_ended ? '; ' + c.sessions_ended + ' session(s) that held the old key ended' : ''));
      loadKeys();
    })).catch(function () {
      say(setStatus, 'the daemon could not be reached; the key was not stored', true);
    }).finally(function () {
      key = '';
      set.querySelector('button').disabled = false;
    });
  });

  keyList.addEventListener('click', function (e) {
    var button = e.target.closest('button[data-remove-key]');
    if (!button) {
      return;
    }
    button.disabled = true;
    var path = '/ui/keys/' + encodeURIComponent(button.getAttribute('data-provider')) + '/' + encodeURIComponent(button.getAttribute('data-remove-key'));
    ringlet.request(path, { method: 'DELETE' }).then(answer(setStatus, function (c) {
      say(setStatus, 'removed ' + c.provider + '/' + c.alias);
      loadKeys();
    })).catch(function () {
      button.disabled = false;
    });
  });

  ringlet.stream('/ui/events', {
    open: function () {
      live.textContent = 'live';
      loadHooks();
      loadKeys();
    },
    audit: function () {
      loadHooks();
      loadKeys();
    },
    error: function () {
      live.textContent = 'reconnecting…';
    }
  });
})();
