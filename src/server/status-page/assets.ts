/**
 * The status page's CSS and script, as strings in a module: served from the
 * package whether it runs from src/ (tsx) or dist/ (compiled), no CDN, no
 * files to copy in the build. Colours meet WCAG AA against white text (≥ 4.5:1)
 * and every state also carries a text label and a symbol.
 */
export const STATUS_CSS = `
:root{--up:#1a7f37;--down:#cf222e;--unknown:#59636e;--degraded:#9a6700;--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--card:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--line:#30363d;--card:#161b22}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header h1{font-size:1.35rem;margin:0 0 .2rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.muted{color:var(--muted)}.small{font-size:.85rem}
.stale{color:var(--down);font-weight:600}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.summary{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;margin:.75rem 0;padding:.6rem .8rem;border-radius:8px;background:var(--card);border-left:6px solid var(--unknown)}
.summary.s-up{border-left-color:var(--up)}.summary.s-down{border-left-color:var(--down)}.summary.s-degraded{border-left-color:var(--degraded)}
.overall{margin:0;font-weight:600}
.groups{display:flex;gap:1rem;list-style:none;margin:0;padding:0;flex-wrap:wrap}
.badge{display:inline-block;min-width:5.5em;padding:.1em .55em;border-radius:999px;color:#fff;font-weight:600;font-size:.85rem;text-align:center;white-space:nowrap}
.badge.s-up{background:var(--up)}.badge.s-down{background:var(--down)}.badge.s-unknown{background:var(--unknown)}.badge.s-degraded{background:var(--degraded)}
table.checks{width:100%;border-collapse:collapse}
.checks th,.checks td{padding:.45rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
.checks thead th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
.checks tr.row{border-left:4px solid transparent}
.checks tr.s-down th{box-shadow:inset 4px 0 var(--down)}.checks tr.s-up th{box-shadow:inset 4px 0 var(--up)}.checks tr.s-degraded th{box-shadow:inset 4px 0 var(--degraded)}.checks tr.s-unknown th{box-shadow:inset 4px 0 var(--unknown)}
.name{font-weight:600;word-break:break-word}
.message{color:var(--muted);word-break:break-word;max-width:28rem}
.spark{color:var(--fg);vertical-align:middle}.spark-fail{fill:var(--down)}
.history-row td{padding-top:0}
.history{display:flex;flex-wrap:wrap;gap:.4rem 1.5rem;align-items:flex-start}
.numbers{display:flex;flex-direction:column;gap:.3rem}
.uptime{display:flex;gap:1rem;margin:0}.uptime div{min-width:3.5rem}.uptime dt{font-size:.75rem;color:var(--muted)}.uptime dd{margin:0;font-weight:600}
.slo{margin:0}.budget{vertical-align:middle}.b-track{fill:var(--line)}.b-ok{fill:var(--up)}.b-low{fill:var(--degraded)}.b-out{fill:var(--down)}
.charts{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem}.chart{margin:0;max-width:100%}.chart svg{display:block;max-width:100%;height:auto}
.rt-line{stroke:var(--fg)}.rt-dot{fill:var(--fg)}.rt-grid{stroke:var(--line);stroke-width:.5}.rt-axis{stroke:var(--muted);stroke-width:.5}
.c-ok{fill:var(--up)}.c-some{fill:var(--degraded)}.c-bad{fill:var(--down)}.c-none{fill:var(--line)}
.incidents{list-style:none;padding:0;margin:0}
.incident{padding:.45rem 0;border-bottom:1px solid var(--line)}
@media (max-width:640px){
 body{padding:.6rem}
 .checks thead{display:none}
 .checks,.checks tbody,.checks tr,.checks th,.checks td{display:block;width:100%}
 .checks tr.row{margin:0 0 .7rem;border:1px solid var(--line);border-radius:8px;background:var(--card);padding:.3rem .2rem}
 .checks tr.row:has(+ tr.history-row){margin-bottom:0;border-bottom:0;border-radius:8px 8px 0 0}
 .checks tr.history-row{margin:0 0 .7rem;border:1px solid var(--line);border-top:0;border-radius:0 0 8px 8px;background:var(--card);padding:.2rem .2rem .5rem}
 .checks th,.checks td{border:0;padding:.2rem .6rem}
 .checks td[data-label]::before{content:attr(data-label);display:inline-block;min-width:7.5rem;color:var(--muted);font-size:.8rem}
}
`;

/** Refresh: fetch the server-rendered fragment and swap it in; pause while the tab is hidden. */
export const STATUS_JS = `(function () {
  'use strict';
  var body = document.body;
  var main = document.getElementById('status');
  var stamp = document.getElementById('updated');
  var stale = document.getElementById('stale');
  var seconds = Number(body.getAttribute('data-refresh')) || 5;
  var title = body.getAttribute('data-title') || document.title;
  var timer = 0;
  var busy = false;
  function schedule() { clearTimeout(timer); timer = setTimeout(tick, seconds * 1000); }
  function setTitle() {
    var summary = main.querySelector('[data-overall]');
    if (summary) document.title = summary.getAttribute('data-overall') + ' \\u2014 ' + title;
  }
  function tick() {
    if (busy) return;
    if (document.hidden) { schedule(); return; }
    busy = true;
    fetch('status/fragment', { cache: 'no-store', headers: { accept: 'text/html' } })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        stamp.textContent = new Date().toISOString().replace('T', ' ').replace(/\\.\\d+Z$/, 'Z');
        stale.hidden = true;
        setTitle();
      }, function () { stale.hidden = false; })
      .then(function () { busy = false; schedule(); });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) tick(); });
  setTitle();
  schedule();
})();
`;
