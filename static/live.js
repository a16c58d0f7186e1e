// The dashboard's live client: one websocket, one subscription per stream on the page
// (docs/protocol.md). Every element with data-stream="<name>" (a list, or a table's tbody)
// is a stream's items, subscribed with the filters of its data-filters (JSON, default none):
// any stream the server has. VIEWS says how a stream's rows look; one not in it shows its
// columns as text.
// It reconnects after any drop with exponential backoff and jitter, resumes each stream
// from the last position it saw, and drops repeats by event id, so a page left open
// through a server restart shows every change once. No dependencies, no build step.
//
// Posts carry only author_id: names come from GET /api/authors, asked once per author.
// New items are announced politely in #announcer for screen readers. It acknowledges what
// it received (the server paces its sending by that), gathers a snapshot's pages, and
// fetches a row whose values were cut to fit a frame from /live/rows/<stream>/<id>.
//
// Hooks for tests and tools: #connection[data-state] is connecting | live | offline;
// each item is <li data-id="<row id>" data-event-id="<event id of its last change>"> (<tr> in
// a table).
(() => {
  "use strict";

  const SNAPSHOT = 30; // rows asked for on subscribe (and after a reset)
  const KEEP = 100; // items kept per list
  const SEEN = 5000; // event ids remembered per stream, to drop repeats
  const BACKOFF_START = 500; // ms; doubles each failed attempt, up to BACKOFF_CAP
  const BACKOFF_CAP = 8000;
  const PING_EVERY = 20000; // ms; no pong within PONG_WAIT: the connection is dead
  const PONG_WAIT = 10000;
  const NAMES = 1000; // author names remembered
  const NAMES_PER_REQUEST = 100; // the endpoint's limit (core/authors.py MAX_IDS)
  const ANNOUNCE_EVERY = 2000; // ms; arrivals within it are announced together
  const ACK_EVERY = 32; // messages between acknowledgements...
  const ACK_CHARS = 256 * 1024; // ...or characters received, whichever comes first

  const statusEl = document.getElementById("connection");
  const filterEl = document.getElementById("category-filter");
  const announcerEl = document.getElementById("announcer");
  const VIEWS = {
    articles: { render: renderArticle, describe: describeArticle },
    posts: { render: renderPost, describe: describePost },
    ticker: { tag: "tr", render: renderQuote, describe: describeQuote, place: bySymbol },
  };
  const ANY = { render: renderColumns, describe: (li) => `New item: ${li.textContent}` };
  const streams = {};
  document.querySelectorAll("[data-stream]").forEach((list) => {
    streams[list.dataset.stream] = newStream(list, JSON.parse(list.dataset.filters || "{}"));
  });
  let socket = null;
  let attempt = 0;
  let pingTimer = null;
  let pongTimer = null;
  const names = new Map(); // author id -> name; null: asked, none given
  const unnamed = new Set(); // author ids to ask about
  let arrivals = 0; // new items since the last announcement
  let latest = null; // the newest of them
  let received = 0; // messages on this connection
  let acked = 0;
  let unackedChars = 0;

  // position: where this stream's items are up to (a snapshot's or change's), or null while
  // it has none. It is never a `subscribed` position: those come before the snapshot, and a
  // resume from one would skip the snapshot the page never got.
  //
  // view: how its rows look, with the defaults: items are <li>, new ones go on top.
  function newStream(list, filters) {
    const view = { tag: "li", place: prepend, ...(VIEWS[list.dataset.stream] || ANY) };
    return { list, view, filters, position: null, seen: new Set(), pages: [] };
  }

  function prepend(list, node) {
    list.prepend(node);
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function connect() {
    setStatus("connecting", attempt ? `reconnecting (attempt ${attempt + 1})` : "connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + document.body.dataset.liveUrl);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      received = acked = unackedChars = 0;
      setStatus("live");
      Object.keys(streams).forEach(subscribe);
      pingTimer = setInterval(ping, PING_EVERY);
    };
    ws.onmessage = (event) => {
      acknowledge(event.data.length);
      handle(JSON.parse(event.data));
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      clearInterval(pingTimer);
      clearTimeout(pongTimer);
      retry();
    };
  }

  function retry() {
    const ceiling = Math.min(BACKOFF_CAP, BACKOFF_START * 2 ** attempt);
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2; // jitter: clients spread out
    attempt += 1;
    setStatus("offline", `offline: retrying in ${(delay / 1000).toFixed(1)}s`);
    setTimeout(connect, delay);
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function acknowledge(chars) {
    received += 1;
    unackedChars += chars;
    if (received - acked < ACK_EVERY && unackedChars < ACK_CHARS) return;
    send({ type: "ack", received });
    acked = received;
    unackedChars = 0;
  }

  function ping() {
    send({ type: "ping" });
    pongTimer = setTimeout(() => socket && socket.close(), PONG_WAIT);
  }

  function subscribe(name) {
    const s = streams[name];
    const message = { type: "subscribe", stream: name, filters: s.filters, snapshot: SNAPSHOT };
    s.pages = []; // pages of an unfinished snapshot belong to a subscription that is gone
    if (s.position) message.after = s.position; // resume: exactly what was missed
    send(message);
  }

  function handle(message) {
    const s = streams[message.stream];
    switch (message.type) {
      case "snapshot":
        s.pages.push(message);
        if (!message.complete) break; // its pages come one after another: show them whole
        clear(s);
        s.pages.forEach((page) => {
          page.rows.forEach((row) => s.list.append(item(s, row, "")));
          Object.keys(page.truncated || {}).forEach((id) => fetchWhole(s, message.stream, id));
        });
        s.pages = [];
        s.position = message.position;
        break;
      case "reset":
        clear(s); // the snapshot that follows is the new state
        s.position = null;
        break;
      case "change":
        if (!s.position) break; // sent before this subscription's snapshot: for an older one
        apply(s, message);
        if (message.truncated && message.row) fetchWhole(s, message.stream, message.row.id);
        s.position = message.position;
        break;
      case "pong":
        clearTimeout(pongTimer);
        break;
      case "error":
        console.warn("live:", message.code, message.message);
        if (message.code === "unavailable" && socket) socket.close(); // reconnect and resume
        break;
    }
  }

  function clear(s) {
    s.list.replaceChildren();
    s.seen.clear();
  }

  // A row cut to fit a frame: show what came, then the whole row once it is fetched.
  function fetchWhole(s, stream, id) {
    fetch(`${document.body.dataset.rowsUrl}${stream}/${id}`)
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((row) => {
        const shown = s.list.querySelector(`:scope > [data-id="${row.id}"]`);
        if (shown) shown.replaceWith(item(s, row, shown.dataset.eventId, shown));
      })
      .catch((problem) => console.warn("live: whole row:", problem));
  }

  function apply(s, change) {
    if (s.seen.has(change.id)) return; // a repeat: already shown
    s.seen.add(change.id);
    if (s.seen.size > SEEN) s.seen.delete(s.seen.values().next().value);
    const id = (change.row || change.old).id;
    const existing = s.list.querySelector(`:scope > [data-id="${id}"]`);
    if (change.op === "delete" || !matches(change.row, s.filters)) {
      if (existing) existing.remove();
      return;
    }
    const fresh = item(s, change.row, change.id, existing);
    if (existing) existing.replaceWith(fresh); // in place: an update is not news
    else {
      s.view.place(s.list, fresh);
      arrived(s, fresh);
    }
    while (s.list.children.length > KEEP) s.list.lastElementChild.remove();
  }

  function matches(row, filters) {
    return Object.entries(filters).every(([key, value]) => row[key] === value);
  }

  // previous: the item this one replaces, if any (the ticker shows the move from it).
  function item(s, row, eventId, previous) {
    const node = document.createElement(s.view.tag);
    node.dataset.id = row.id;
    node.dataset.eventId = eventId;
    s.view.render(node, row, previous);
    return node;
  }

  function renderArticle(li, row) {
    const title = el(/^https?:\/\//i.test(row.url) ? "a" : "span", "title", row.title);
    if (title.tagName === "A") title.href = row.url;
    li.append(title, el("div", "meta", [row.source, row.category, when(row.published_at)].filter(Boolean).join(" · ")));
  }

  function renderPost(li, row) {
    const author = el("span", "author", nameOf(row.author_id));
    author.dataset.authorId = row.author_id;
    const rest = [when(row.created_at)];
    if (row.visibility === "private") rest.push("private");
    li.classList.toggle("private", row.visibility === "private");
    const meta = el("div", "meta", "");
    meta.append(author, ...rest.map((text) => ` · ${text}`));
    li.append(el("div", "body", row.body), meta);
  }

  // A quote: symbol, price, its move since the last price shown (▲/▼, and in words for
  // screen readers: colour is never the only sign), and when it was set.
  function renderQuote(tr, row, previous) {
    const price = Number(row.price);
    const before = previous ? Number(previous.dataset.price) : price;
    const direction = price > before ? "up" : price < before ? "down" : "";
    tr.dataset.price = price;
    tr.className = direction;
    const symbol = el("th", "symbol", row.symbol);
    symbol.scope = "row";
    const move = el("td", "move", "");
    if (direction) {
      const arrow = el("span", "arrow", direction === "up" ? "▲" : "▼");
      arrow.setAttribute("aria-hidden", "true");
      move.append(arrow, el("span", "visually-hidden", direction), ` ${Math.abs(price - before).toFixed(2)}`);
    }
    tr.append(symbol, el("td", "price", price.toFixed(2)), move, el("td", "meta", time(row.updated_at)));
  }

  function renderColumns(li, row) {
    li.append(el("div", "body", Object.entries(row).map(([key, value]) => `${key}: ${value}`).join(" · ")));
  }

  function bySymbol(tbody, tr) {
    const symbol = tr.querySelector(".symbol").textContent;
    const after = [...tbody.children].find((other) => other.querySelector(".symbol").textContent > symbol);
    tbody.insertBefore(tr, after || null);
  }

  function describeArticle(li) {
    return `New article: ${li.querySelector(".title").textContent}`;
  }

  function describePost(li) {
    return `New post by ${li.querySelector(".author").textContent}`;
  }

  function describeQuote(tr) {
    return `New symbol ${tr.querySelector(".symbol").textContent} at ${tr.dataset.price}`;
  }

  function nameOf(id) {
    if (!names.has(id) && !unnamed.has(id)) {
      if (!unnamed.size) setTimeout(askNames); // one request for all of a snapshot's authors
      unnamed.add(id);
    }
    return names.get(id) || `user #${id}`;
  }

  function askNames() {
    const ids = [...unnamed].slice(0, NAMES_PER_REQUEST);
    ids.forEach((id) => unnamed.delete(id));
    if (unnamed.size) setTimeout(askNames);
    fetch(`${document.body.dataset.authorsUrl}?ids=${ids.join(",")}`)
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((found) => ids.forEach((id) => named(id, found[id] || null)))
      .catch((problem) => console.warn("live: author names:", problem)); // asked again when next seen
  }

  function named(id, name) {
    names.set(id, name);
    if (names.size > NAMES) names.delete(names.keys().next().value);
    if (!name) return; // no public post (any more): the id stays
    document.querySelectorAll(`.author[data-author-id="${id}"]`).forEach((node) => {
      node.textContent = name;
    });
  }

  function arrived(s, li) {
    if (!arrivals) setTimeout(announce, ANNOUNCE_EVERY);
    arrivals += 1;
    latest = { s, li };
  }

  function announce() {
    const text = latest.s.view.describe(latest.li); // by now, with the author's name
    announcerEl.textContent = arrivals === 1 ? text : `${arrivals} new items, the latest: ${text}`;
    arrivals = 0;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    node.textContent = text; // never innerHTML: rows come from any writer
    return node;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function time(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : "";
  }

  if (filterEl) {
    filterEl.addEventListener("change", () => {
      const articles = streams.articles;
      articles.filters = filterEl.value ? { category: filterEl.value } : {};
      articles.position = null; // a new subscription: a new snapshot, not a resume
      subscribe("articles"); // when offline, the next connect subscribes with the new filter
    });
  }
  connect();
})();
