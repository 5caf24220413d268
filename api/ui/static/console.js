// streamsaga console: keeps the server-rendered page fresh and sends the
// operator's actions to the public API. No dependencies, no build step.
//
// - Live: every 2 s the page's live region is refreshed from its JSON twin
//   (data-live), paused while the tab is hidden.
// - Actions: Retry (POST /sagas/{id}/retry) and Replay
//   (POST /deadletters/{id}/replay?partition=N: an entry id is unique only
//   within its partition) go to the API itself, so they pass the
//   same checks as any client. The admin token is kept in sessionStorage
//   and sent only as the Authorization header of those requests.
// - Everything shown comes from the server's escaped HTML or is set with
//   textContent: nothing from the data is ever parsed as markup here.
(function () {
  'use strict';

  const POLL_MS = 2000;
  const TOKEN_KEY = 'streamsaga.adminToken';

  document.documentElement.classList.add('js');

  const $ = (id) => document.getElementById(id);
  const region = $('live');
  const liveState = $('live-state');
  const flash = $('flash');

  // ---- admin token ---------------------------------------------------
  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; }
  }
  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage disabled: the token lives for this page only */ }
    memoryToken = t;
    showTokenState();
  }
  let memoryToken = getToken();
  function token() { return getToken() || memoryToken; }
  function showTokenState() {
    const s = $('token-state');
    if (s) s.textContent = token() ? 'token set' : 'no token';
  }
  const tokenForm = $('token-form');
  if (tokenForm) {
    const input = $('token');
    input.value = token();
    tokenForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      say('ok', token() ? 'Admin token set for this tab.' : 'Admin token cleared.');
    });
    $('token-forget').addEventListener('click', () => {
      input.value = '';
      setToken('');
      say('ok', 'Admin token forgotten.');
    });
    showTokenState();
  }

  // ---- messages --------------------------------------------------------
  function say(kind, text) {
    if (!flash) return;
    flash.className = kind === 'ok' ? 'ok' : 'err';
    flash.textContent = text;
    flash.hidden = false;
  }

  // ---- filters: apply on change -----------------------------------------
  const filters = $('filters');
  if (filters) {
    filters.addEventListener('change', () => filters.requestSubmit());
  }

  // ---- live updates ------------------------------------------------------
  let timer = 0;
  let lastHTML = null;
  let inFlight = false;

  function setLive(text, off) {
    if (!liveState) return;
    liveState.textContent = text;
    liveState.classList.toggle('off', !!off);
  }

  // actionKey names an action button across updates.
  const actionKey = (b) => [b.dataset.action, b.dataset.partition || '', b.dataset.id].join(':');

  // swap replaces the live region, keeping open <details> open and the
  // focus on the same action button.
  function swap(html) {
    const open = new Set();
    region.querySelectorAll('details[open][data-key]').forEach((d) => open.add(d.dataset.key));
    const f = document.activeElement;
    const focusKey = f && region.contains(f) && f.dataset && f.dataset.action ? actionKey(f) : '';
    region.innerHTML = html;
    region.querySelectorAll('details[data-key]').forEach((d) => { if (open.has(d.dataset.key)) d.open = true; });
    if (focusKey) {
      region.querySelectorAll('[data-action]').forEach((b) => {
        if (actionKey(b) === focusKey) b.focus();
      });
    }
  }

  async function poll() {
    clearTimeout(timer);
    timer = 0;
    if (!region || !region.dataset.live) return;
    if (document.hidden) { setLive('paused while the tab is hidden'); return; }
    if (inFlight) { schedule(); return; }
    inFlight = true;
    try {
      const resp = await fetch(region.dataset.live, { cache: 'no-store', headers: { Accept: 'application/json' } });
      const body = await resp.json().catch(() => null);
      if (!resp.ok) {
        const msg = body && body.error ? body.error.message : resp.statusText;
        throw new Error(resp.status + ' ' + msg);
      }
      if (body.html !== lastHTML) {
        swap(body.html);
        lastHTML = body.html;
      }
      setLive('live · ' + new Date().toLocaleTimeString());
    } catch (err) {
      setLive('not updating: ' + err.message + ' (retrying)', true);
    } finally {
      inFlight = false;
      schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (!document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      setLive('paused while the tab is hidden');
    } else {
      poll();
    }
  });

  // ---- actions -------------------------------------------------------------
  const actions = {
    retry: {
      url: (d) => '/sagas/' + encodeURIComponent(d.id) + '/retry',
      done: (id, body) => 'Retry accepted: saga ' + id + ' is ' + ((body && body.status) || 'being re-driven') + '.',
      what: 'Retry',
    },
    replay: {
      url: (d) => '/deadletters/' + encodeURIComponent(d.id) + '/replay?partition=' + encodeURIComponent(d.partition),
      done: (id, body) => 'Dead letter ' + id + ' replayed' +
        (body && body.stream ? ' on ' + body.stream + ' as ' + body.id : '') + '.',
      what: 'Replay',
    },
  };

  async function act(button) {
    const a = actions[button.dataset.action];
    const id = button.dataset.id;
    if (!a || !id) return;
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    button.disabled = true;
    try {
      const resp = await fetch(a.url(button.dataset), { method: 'POST', headers, cache: 'no-store', credentials: 'omit' });
      const body = await resp.json().catch(() => null);
      if (resp.ok) {
        say('ok', a.done(id, body));
      } else {
        let msg = body && body.error && body.error.message ? body.error.message : resp.statusText;
        if (resp.status === 401 && !t) msg += ' — enter the admin token above';
        say('err', a.what + ' refused (' + resp.status + '): ' + msg);
      }
    } catch (err) {
      say('err', a.what + ' failed: ' + err.message);
    } finally {
      button.disabled = false;
      poll();
    }
  }

  document.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    if (button) {
      ev.preventDefault();
      act(button);
    }
  });

  if (region && region.dataset.live) {
    setLive('live');
    schedule();
  }
})();
