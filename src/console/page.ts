// The console's page: HTML, CSS and one plain ES module, kept as strings so that tsc ships them
// in dist/ with the rest of the package (it copies no static files) and nothing needs a build
// step. The script renders every view from the JSON API with createElement and textContent
// only: record keys, values and headers are the producer's bytes, and none of it is ever parsed
// as HTML. Navigation is by the URL's hash, so the server serves one document.

export function consolePage(options: { readonly actions: boolean; readonly token: string | null }): string {
  // The token is base64url (no character needs escaping in an attribute).
  const token = options.token === null ? '' : `\n<meta name="tideway-token" content="${options.token}">`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tideway console</title>
<meta name="tideway-actions" content="${options.actions ? 'on' : 'off'}">${token}
<link rel="stylesheet" href="/console.css">
<script type="module" src="/console.js"></script>
</head>
<body>
<header>
<a class="brand" href="#/topics">Tideway</a>
<nav>
<a href="#/topics" data-section="topics">Topics</a>
<a href="#/groups" data-section="groups">Groups</a>
<a href="#/dead-letters" data-section="dead-letters">Dead letters</a>
<a href="#/sagas" data-section="sagas">Sagas</a>
<a href="#/breakers" data-section="breakers">Breakers</a>
<a href="/metrics">Metrics</a>
</nav>
<span id="broker"></span>
<label id="auto" title="Reload this view every 5 seconds"><input type="checkbox" id="auto-refresh"> Auto</label>
<button id="refresh" type="button" title="Reload this view">Refresh</button>
</header>
<main id="main"><p class="muted">Loading…</p></main>
</body>
</html>
`
}

export const CONSOLE_CSS = String.raw`
:root { --fg: #1c2330; --muted: #667085; --line: #dde2ea; --bg: #f6f8fb; --head: #14213d; --accent: #2f6fdf;
  --ok: #157f3b; --warn: #a15c00; --bad: #b42318; --info: #2f6fdf; --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 18px; padding: 0 16px; height: 42px; background: var(--head); color: #fff; position: sticky; top: 0; z-index: 1; }
header .brand { font-weight: 700; font-size: 15px; color: #fff; text-decoration: none; letter-spacing: .02em; }
header nav { display: flex; gap: 2px; }
header nav a { color: #c9d3e6; text-decoration: none; padding: 6px 10px; border-radius: 4px; }
header nav a:hover { background: #24345a; color: #fff; }
header nav a.active { background: #2d4a86; color: #fff; }
#broker { margin-left: auto; color: #9fb0cf; font-family: var(--mono); font-size: 12px; }
header button { background: #24345a; color: #fff; border: 1px solid #3b5591; }
#auto { color: #c9d3e6; font-size: 12px; display: flex; align-items: center; gap: 4px; cursor: pointer; }
main { padding: 14px 16px 40px; max-width: 1600px; }
h1 { font-size: 18px; margin: 4px 0 10px; font-weight: 600; }
h1 .sub, .crumbs { color: var(--muted); font-weight: 400; }
h1.mono, h1 .mono { font-size: 16px; }
h2 { font-size: 14px; margin: 18px 0 6px; font-weight: 600; }
.crumbs { margin-bottom: 2px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f6; font-weight: 600; font-size: 12px; color: #344054; white-space: nowrap; }
tr:hover td { background: #fafbfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono, td.num { font-family: var(--mono); font-size: 12px; overflow-wrap: anywhere; }
pre { margin: 0; font-family: var(--mono); font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 16em; overflow: auto; }
.fields { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0 0 10px; }
.fields dt { color: var(--muted); }
.fields dd { margin: 0; font-family: var(--mono); font-size: 12px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .info { color: var(--info); } .muted { color: var(--muted); }
.as { color: var(--muted); font-size: 10px; text-transform: uppercase; margin-right: 4px; }
.note { color: var(--warn); font-size: 11px; }
td.time { white-space: nowrap; }
td.key { min-width: 9em; max-width: 24em; }
.hdr { font-family: var(--mono); font-size: 12px; white-space: nowrap; }
.hdr b { font-weight: 600; color: #344054; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 6px 0 10px; }
.toolbar .group { display: inline-flex; }
.toolbar .group button { border-radius: 0; margin-left: -1px; }
.toolbar .group button:first-child { border-radius: 4px 0 0 4px; }
.toolbar .group button:last-child { border-radius: 0 4px 4px 0; }
button, select, input { font: inherit; font-size: 12px; padding: 3px 9px; border: 1px solid #c5ccd8; border-radius: 4px; background: #fff; color: var(--fg); }
button { cursor: pointer; }
button:hover { background: #eef3ff; }
button.on { background: var(--accent); color: #fff; border-color: var(--accent); }
button.action { background: #fff4e5; border-color: #e0a458; color: #7a3e00; }
input.offset { width: 11em; font-family: var(--mono); }
.box { padding: 10px 12px; border-radius: 4px; margin: 8px 0; border: 1px solid; background: #fff; }
.box.error { border-color: #f0b4ae; background: #fff5f4; color: var(--bad); }
.box.hint { border-color: #c8d5f0; background: #f4f7ff; }
.box.done { border-color: #a6dbb8; background: #f1fbf4; color: var(--ok); }
.box code { font-family: var(--mono); background: #eef1f6; padding: 0 4px; border-radius: 3px; color: var(--fg); }
.empty { color: var(--muted); padding: 10px 0; }
`

// A plain ES module (no template literals inside: this whole text is one).
export const CONSOLE_JS = String.raw`
const main = document.getElementById('main')
const meta = (name) => document.querySelector('meta[name="' + name + '"]')?.getAttribute('content') ?? ''
const actions = meta('tideway-actions') === 'on'
const token = meta('tideway-token')
const VIEWS = ['auto', 'json', 'text', 'hex']

// Elements from data, never from markup: every string becomes a text node.
function h(tag, props, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (name === 'class') el.className = value
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, String(value))
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

async function api(path, init) {
  const res = await fetch('/api' + path, { headers: { accept: 'application/json', ...(init?.headers ?? {}) }, ...init })
  const body = await res.json().catch(() => ({ error: res.status + ' ' + res.statusText }))
  if (!res.ok) throw new Error(body.error ?? res.status + ' ' + res.statusText)
  return body
}

const enc = encodeURIComponent
const link = (hash, text, cls) => h('a', { href: '#' + hash, class: cls }, text)
const num = (value) => h('td', { class: 'num' }, value === null || value === undefined ? '-' : String(value))
const time = (ms) => (ms === null || ms === undefined || Number(ms) < 0 ? '-' : new Date(Number(ms)).toISOString().replace('T', ' ').replace('Z', ''))
const bytes = (n) => (n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : n < 1073741824 ? (n / 1048576).toFixed(1) + ' MiB' : (n / 1073741824).toFixed(2) + ' GiB')
const badge = (text, cls) => h('span', { class: 'badge ' + cls }, text)

function table(headers, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty ?? 'none')
  return h('table', {},
    h('thead', {}, h('tr', {}, headers.map((name) => h('th', { class: name.endsWith('#') ? 'num' : undefined }, name.replace(/#$/, ''))))),
    h('tbody', {}, rows))
}

const fields = (pairs) => h('dl', { class: 'fields' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '-')]))
const box = (cls, ...content) => h('div', { class: 'box ' + cls }, ...content)

// A key, value or header value as the API shows it: JSON, text or hex, and whether it was cut.
function shown(v) {
  if (v.as === 'null') return h('span', { class: 'muted' }, 'null')
  return h('div', {},
    h('span', { class: 'as' }, v.as), h('pre', { class: 'v-' + v.as }, v.data),
    v.truncated ? h('div', { class: 'note' }, 'cut: the whole field is ' + v.size + ' bytes') : null)
}

function inline(v) {
  if (v.as === 'null') return h('span', { class: 'muted' }, 'null')
  return h('span', { class: 'mono' }, v.data + (v.truncated ? '…' : ''))
}

function headersCell(record) {
  return h('td', {}, record.headers.map((hd) => h('div', { class: 'hdr' }, h('b', {}, hd.name), ': ', inline(hd.value))),
    record.moreHeaders > 0 ? h('div', { class: 'note' }, record.moreHeaders + ' more headers not shown') : null)
}

const statusClass = { completed: 'ok', closed: 'ok', Stable: 'ok', running: 'info', compensating: 'warn', compensated: 'warn', 'half-open': 'warn',
  PreparingRebalance: 'warn', CompletingRebalance: 'warn', Empty: 'muted', 'failed-compensation': 'bad', open: 'bad', failed: 'bad', done: 'ok', started: 'info' }
const status = (s) => badge(s, statusClass[s] ?? 'muted')

function pageControls(base, page, query, extra) {
  const limit = Number(query.get('limit') ?? 25)
  const view = query.get('view') ?? 'auto'
  const go = (changes) => {
    const next = new URLSearchParams(query)
    for (const [k, v] of Object.entries(changes)) next.set(k, String(v))
    location.hash = base + '?' + next.toString()
  }
  const start = BigInt(page.logStartOffset)
  const end = BigInt(page.highWatermark)
  const from = query.get('offset') ? BigInt(query.get('offset')) : start
  const max = (a, b) => (a > b ? a : b)
  const input = h('input', { class: 'offset', type: 'text', inputmode: 'numeric', value: String(from), 'aria-label': 'offset' })
  return h('div', { class: 'toolbar' },
    extra,
    h('form', { onsubmit: (e) => { e.preventDefault(); if (/^\d+$/.test(input.value)) go({ offset: input.value }) } },
      h('label', {}, 'From offset ', input), ' ', h('button', { type: 'submit' }, 'Go')),
    h('span', { class: 'group' },
      h('button', { type: 'button', onclick: () => go({ offset: start }) }, 'First'),
      h('button', { type: 'button', onclick: () => go({ offset: max(start, from - BigInt(limit)) }) }, 'Previous'),
      h('button', { type: 'button', disabled: BigInt(page.next) >= end, onclick: () => go({ offset: page.next }) }, 'Next'),
      h('button', { type: 'button', onclick: () => go({ offset: max(start, end - BigInt(limit)) }) }, 'Latest')),
    h('label', {}, 'Show ', h('select', { onchange: (e) => go({ limit: e.target.value }) }, [10, 25, 50, 100].map((n) => h('option', { value: n, selected: n === limit }, n)))),
    h('span', { class: 'group', role: 'group', 'aria-label': 'view' },
      VIEWS.map((v) => h('button', { type: 'button', class: v === view ? 'on' : undefined, onclick: () => go({ view: v }) }, v))),
    h('span', { class: 'muted' }, 'offsets ' + page.logStartOffset + ' to ' + page.highWatermark + ' (high watermark)'))
}

// ---------------------------------------------------------------------------------------------
// Views: each returns the nodes of main.

const views = {
  async topics() {
    const topics = await api('/topics')
    return [h('h1', {}, 'Topics ', h('span', { class: 'sub' }, topics.length + ' topics')),
      table(['Topic', 'Kind', 'Partitions#', 'Records#', 'Size#'], topics.map((t) => h('tr', {},
        h('td', {}, link('/topics/' + enc(t.name), t.name, 'mono'), t.deadLetters ? [' ', badge('dead letters', 'warn')] : null),
        h('td', {}, t.kind), num(t.partitions), num(t.records), h('td', { class: 'num', title: t.sizeBytes + ' bytes' }, bytes(t.sizeBytes)))), 'no topics yet')]
  },

  async topic([name]) {
    const t = await api('/topics/' + enc(name))
    const configs = Object.entries(t.configs)
    return [h('div', { class: 'crumbs' }, link('/topics', 'Topics'), ' /'), h('h1', { class: 'mono' }, t.name),
      fields([['topic id', t.topicId], ['kind', t.kind], ['configs', configs.length ? configs.map(([k, v]) => k + '=' + v).join('  ') : 'defaults']]),
      h('h2', {}, 'Partitions'),
      table(['Partition#', 'Log start#', 'High watermark#', 'Records#', 'Size#', 'Segments#', 'State', ''], t.partitions.map((p) => h('tr', {},
        num(p.partition), num(p.logStartOffset), num(p.highWatermark), num(BigInt(p.highWatermark) - BigInt(p.logStartOffset)),
        h('td', { class: 'num', title: p.sizeBytes + ' bytes' }, bytes(p.sizeBytes)), num(p.segments),
        h('td', {}, p.fenced ? badge('fenced: ' + p.fenced, 'bad') : badge('ok', 'ok')),
        h('td', {}, link('/topics/' + enc(name) + '/' + p.partition, 'Browse records')))))]
  },

  async records([name, partition], query) {
    const base = '/topics/' + enc(name) + '/' + partition
    const page = await api('/topics/' + enc(name) + '/partitions/' + partition + '/records?' + query.toString())
    return [h('div', { class: 'crumbs' }, link('/topics', 'Topics'), ' / ', link('/topics/' + enc(name), name), ' /'),
      h('h1', {}, h('span', { class: 'mono' }, name), ' ', h('span', { class: 'sub' }, 'partition ' + partition + ' records')),
      pageControls(base, page, query),
      table(['Offset#', 'Timestamp', 'Key', 'Headers', 'Value'], page.records.map((r) => r.lastOffset !== undefined
        ? h('tr', {}, num(r.offset), h('td', { colspan: 4 }, badge('unreadable batch', 'bad'), ' offsets ' + r.offset + '-' + r.lastOffset + ': ' + r.error))
        : h('tr', { 'data-offset': r.offset }, num(r.offset), h('td', { class: 'mono time' }, time(r.timestamp)), h('td', { class: 'key' }, shown(r.key)), headersCell(r), h('td', {}, shown(r.value))))
      , 'no records from this offset')]
  },

  async groups() {
    const groups = await api('/groups')
    return [h('h1', {}, 'Consumer groups ', h('span', { class: 'sub' }, groups.length + ' groups')),
      table(['Group', 'State', 'Protocol type', 'Members#', 'Partitions#', 'Lag#'], groups.map((g) => h('tr', {},
        h('td', {}, link('/groups/' + enc(g.group), g.group, 'mono')), h('td', {}, status(g.state)), h('td', {}, g.protocolType || '-'),
        num(g.members), num(g.partitions), num(g.lag))), 'no consumer groups yet')]
  },

  async group([id]) {
    const g = await api('/groups/' + enc(id))
    const assignment = (m) => m.assignment.filter((a) => a.partitions.length).map((a) => a.topic + ':' + a.partitions.join(',')).join(' ') || '-'
    return [h('div', { class: 'crumbs' }, link('/groups', 'Groups'), ' /'), h('h1', { class: 'mono' }, g.group),
      fields([['state', status(g.state)], ['protocol', (g.protocolType || '-') + (g.protocol ? ' (' + g.protocol + ')' : '')], ['members', String(g.members.length)], ['total lag', String(g.totalLag)]]),
      h('h2', {}, 'Members'),
      table(['Member', 'Instance', 'Client id', 'Host', 'Assignment'], g.members.map((m) => h('tr', {},
        h('td', { class: 'mono' }, m.memberId), h('td', { class: 'mono' }, m.groupInstanceId ?? '-'), h('td', { class: 'mono' }, m.clientId),
        h('td', { class: 'mono' }, m.clientHost || '-'), h('td', { class: 'mono' }, assignment(m)))), 'no active members'),
      h('h2', {}, 'Offsets and lag'),
      table(['Topic', 'Partition#', 'Committed#', 'Log end#', 'Lag#', 'Member'], g.partitions.map((p) => h('tr', {},
        h('td', {}, link('/topics/' + enc(p.topic), p.topic, 'mono')), num(p.partition), num(p.committedOffset), num(p.logEndOffset),
        h('td', { class: 'num lag' }, p.lag === null ? '-' : String(p.lag)), h('td', { class: 'mono' }, p.memberId ?? '-'))), 'no committed offsets and no assigned partitions')]
  },

  async 'dead-letters'() {
    const dlts = await api('/dead-letters')
    return [h('h1', {}, 'Dead letters ', h('span', { class: 'sub' }, dlts.length + ' dead-letter topics')),
      actions ? null : box('hint', 'Read-only: redrive with ', h('code', {}, 'tideway dlq redrive'), ', or start the broker with ', h('code', {}, '--console-actions'), ' to redrive from here.'),
      table(['Dead-letter topic', 'Source topic', 'Partitions#', 'Records#', 'Not redriven#'], dlts.map((d) => h('tr', {},
        h('td', {}, link('/dead-letters/' + enc(d.topic), d.topic, 'mono')), h('td', {}, link('/topics/' + enc(d.source), d.source, 'mono')),
        num(d.partitions), num(d.records), num(d.pending))), 'no dead-letter topics (topics named <topic>.dlt)')]
  },

  async 'dead-letter'([topic], query) {
    const base = '/dead-letters/' + enc(topic)
    const page = await api(base + '?' + query.toString())
    const redrive = async (body, button) => {
      if (!confirm(body.all ? 'Send every dead letter not yet redriven back to its topic?' : 'Send the record at offset ' + body.offset + ' back to its topic?')) return
      button.disabled = true
      try {
        const result = await api(base + '/redrive', { method: 'POST', headers: { 'content-type': 'application/json', 'x-tideway-console-token': token }, body: JSON.stringify(body) })
        flash = box('done', 'Sent ' + result.sent + ' record(s) back' + result.to.map((t) => ' to ' + t.topic + '-' + t.partition).join(',') + ' (redrive ' + result.redriveId + ')' +
          (result.skipped ? '; ' + result.skipped + ' without provenance left here' : '') + (Number(result.remaining) > 0 ? '; ' + result.remaining + ' left for another click' : '') + '.')
      } catch (err) {
        flash = box('error', 'Redrive failed: ' + err.message)
      }
      render()
    }
    const partitions = page.partitions > 1
      ? h('label', {}, 'Partition ', h('select', { onchange: (e) => { location.hash = base + '?partition=' + e.target.value } },
          Array.from({ length: page.partitions }, (_, p) => h('option', { value: p, selected: p === page.partition }, p))))
      : null
    const source = (s) => (s ? h('span', { class: 'mono' }, link('/topics/' + enc(s.topic) + '/' + s.partition + '?offset=' + s.offset, s.topic + '-' + s.partition + '@' + s.offset)) : h('span', { class: 'muted' }, 'unknown'))
    return [h('div', { class: 'crumbs' }, link('/dead-letters', 'Dead letters'), ' /'), h('h1', { class: 'mono' }, topic),
      fields([['redrive cursor', 'partition ' + page.partition + ': offset ' + page.cursor + ' (records below it were sent back by a redrive of all)']]),
      actions ? h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'action', id: 'redrive-all', onclick: (e) => redrive({ all: true }, e.target) }, 'Redrive all not yet redriven')) : null,
      pageControls(base, page, query, partitions),
      table(['Offset#', 'Source', 'Group', 'Class', 'Attempts#', 'Last failure', 'Error', 'Key', 'Value', ''], page.letters.map((l) => l.lastOffset !== undefined
        ? h('tr', {}, num(l.offset), h('td', { colspan: 9 }, badge('unreadable batch', 'bad'), ' ' + l.error))
        : h('tr', { 'data-offset': l.offset }, num(l.offset), h('td', {}, source(l.source)), h('td', { class: 'mono' }, l.group ?? '-'),
          h('td', {}, l.errorClass ? badge(l.errorClass, l.errorClass === 'permanent' ? 'bad' : 'warn') : '-'), num(l.attempts), h('td', { class: 'mono' }, l.lastFailure ?? '-'),
          h('td', {}, h('pre', {}, l.error ?? '-')), h('td', { class: 'key' }, shown(l.key)), h('td', {}, shown(l.value)),
          h('td', {}, l.redriven ? badge('redriven', 'ok') : null, actions && l.source
            ? h('button', { type: 'button', class: 'action redrive', onclick: (e) => redrive({ partition: page.partition, offset: l.offset }, e.target) }, 'Redrive')
            : null))), 'no dead letters from this offset')]
  },

  async sagas(_, query) {
    const result = await api('/sagas?' + query.toString())
    const head = [h('h1', {}, 'Sagas'), unavailable(result)]
    if (!result.data) return head
    const filter = h('label', {}, 'Status ', h('select', { onchange: (e) => { location.hash = '/sagas' + (e.target.value ? '?status=' + e.target.value : '') } },
      ['', 'running', 'compensating', 'completed', 'compensated', 'failed-compensation'].map((s) => h('option', { value: s, selected: s === (query.get('status') ?? '') }, s || 'all'))))
    return [...head, h('div', { class: 'toolbar' }, filter, h('span', { class: 'muted' }, result.data.length + ' instances (oldest first, at most 100) in ' + result.source)),
      table(['Instance', 'Saga', 'Version#', 'Status', 'Step#', 'Failed step', 'Updated', 'Last error'], result.data.map((i) => h('tr', {},
        h('td', {}, link('/sagas/' + enc(i.instanceId), i.instanceId, 'mono')), h('td', {}, i.sagaName), num(i.sagaVersion), h('td', {}, status(i.status)),
        num(i.currentStep), h('td', {}, i.failedStep ?? '-'), h('td', { class: 'mono time' }, time(i.updatedAtMs)), h('td', {}, i.lastError ?? ''))), 'no saga instances')]
  },

  async saga([id]) {
    const result = await api('/sagas/' + enc(id))
    const head = [h('div', { class: 'crumbs' }, link('/sagas', 'Sagas'), ' /'), h('h1', { class: 'mono' }, id), unavailable(result)]
    if (!result.data) return result.error || !result.configured ? head : [...head, box('error', 'no saga instance "' + id + '"')]
    const s = result.data
    return [...head,
      fields([['saga', s.sagaName + ' v' + s.sagaVersion], ['status', status(s.status)], ['current step', String(s.currentStep)], ['failed step', s.failedStep],
        ['last error', s.lastError], ['input', JSON.stringify(s.input)], ['trace', s.traceparent], ['created', time(s.createdAtMs)], ['updated', time(s.updatedAtMs)], ['finished', time(s.finishedAtMs)], ['driven by', s.lease ? s.lease.owner + ' (lease until ' + time(s.lease.expiresAtMs) + ')' : null]]),
      h('h2', {}, 'Steps'),
      table(['Phase', 'Index#', 'Step', 'Status', 'Attempt#', 'Invocations#', 'Idempotency key', 'Result', 'Started', 'Finished', 'Last error'], s.steps.map((st) => h('tr', {},
        h('td', {}, st.phase), num(st.index), h('td', { class: 'step' }, st.name), h('td', {}, status(st.status), st.outcomeUncertain ? [' ', badge('outcome uncertain', 'warn')] : null),
        num(st.attempt), num(st.invocations), h('td', { class: 'mono' }, st.idempotencyKey), h('td', { class: 'mono' }, st.result === null ? '-' : JSON.stringify(st.result)),
        h('td', { class: 'mono time' }, time(st.startedAtMs)), h('td', { class: 'mono time' }, time(st.finishedAtMs)), h('td', {}, st.lastError ?? ''))), 'no steps started'),
      h('h2', {}, 'Timers'),
      table(['Timer', 'Kind', 'Status', 'Fires at'], s.timers.map((t) => h('tr', {}, h('td', { class: 'mono' }, t.id), h('td', {}, t.kind), h('td', {}, status(t.status)), h('td', { class: 'mono time' }, time(t.fireAtMs)))), 'no timers')]
  },

  async breakers() {
    const result = await api('/breakers')
    const head = [h('h1', {}, 'Circuit breakers'), unavailable(result)]
    if (!result.data) return head
    const b = result.data
    const halfOpen = (r) => (r.state === 'half-open' ? 'now (' + r.probesInFlight + ' probes out)' : r.halfOpenInMs === null ? '-' : r.halfOpenInMs === 0 ? 'due' : 'in ' + (r.halfOpenInMs / 1000).toFixed(1) + ' s')
    return [...head, h('div', { class: 'toolbar muted' }, b.breakers.length + ' breakers under prefix ', h('code', { class: 'mono' }, b.prefix), ' in ' + result.source + ' (Redis time)'),
      b.truncated ? box('error', 'more keys than the console lists: only the first ones are shown') : null,
      table(['Breaker', 'State', 'Failure rate#', 'Calls#', 'Failures#', 'Half-open', 'Reason', 'Window', 'Since'], b.breakers.map((r) => h('tr', {},
        h('td', { class: 'mono' }, r.breaker), h('td', {}, status(r.state)), num((r.failureRate * 100).toFixed(1) + '%'), num(r.calls), num(r.failures),
        h('td', {}, halfOpen(r)), h('td', {}, r.reason), h('td', { class: 'mono' }, r.window), h('td', { class: 'mono time' }, time(r.since ? Date.parse(r.since) : null)))), 'no breakers under this prefix')]
  },
}

// A source the broker was not given, or one that failed: say how to set it up, or what went wrong.
function unavailable(result) {
  if (!result.configured) return box('hint', 'Not configured: ' + result.hint + '.')
  if (result.error) return box('error', result.source + ': ' + result.error)
  return null
}

// ---------------------------------------------------------------------------------------------
// Routing by the hash: #/topics, #/topics/NAME, #/topics/NAME/P?offset=..., #/groups/ID, ...

let flash = null
let rendering = 0

function route() {
  const hash = location.hash.replace(/^#/, '') || '/topics'
  const [path, search] = hash.split('?')
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  const query = new URLSearchParams(search ?? '')
  const [section, ...rest] = parts
  const single = { topics: rest.length === 2 ? 'records' : rest.length === 1 ? 'topic' : 'topics', groups: rest.length ? 'group' : 'groups',
    'dead-letters': rest.length ? 'dead-letter' : 'dead-letters', sagas: rest.length ? 'saga' : 'sagas', breakers: 'breakers' }
  return { section: section in single ? section : 'topics', view: single[section] ?? 'topics', rest, query }
}

async function render() {
  const ticket = ++rendering
  const { section, view, rest, query } = route()
  for (const a of document.querySelectorAll('nav a[data-section]')) a.classList.toggle('active', a.dataset.section === section)
  let nodes
  try {
    nodes = await views[view](rest, query)
  } catch (err) {
    nodes = [box('error', err.message)]
  }
  if (ticket !== rendering) return
  const shownFlash = flash
  flash = null
  main.replaceChildren(...[shownFlash, nodes].flat(Infinity).filter(Boolean))
  main.dataset.view = view
}

async function overview() {
  try {
    const o = await api('/overview')
    document.getElementById('broker').textContent = 'cluster ' + o.clusterId + ' · node ' + o.nodeId + ' · ' + o.bootstrap + (o.actions ? ' · actions on' : ' · read-only')
  } catch {}
}

window.addEventListener('hashchange', render)
document.getElementById('refresh').addEventListener('click', render)

// Auto refresh, remembered per browser: never while the tab is hidden, nor while the user is
// typing into the page (the offset box), which a re-render would wipe.
const AUTO_REFRESH_MS = 5000
const auto = document.getElementById('auto-refresh')
auto.checked = localStorage.getItem('tideway.console.auto') === 'on'
auto.addEventListener('change', () => localStorage.setItem('tideway.console.auto', auto.checked ? 'on' : 'off'))
setInterval(() => {
  const typing = document.activeElement instanceof HTMLInputElement && main.contains(document.activeElement)
  if (auto.checked && !document.hidden && !typing) render()
}, AUTO_REFRESH_MS)

overview()
render()
`
