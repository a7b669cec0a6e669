// The herd status page: polls status.json every second and draws it. Plain
// DOM and canvas; every string from the server goes in as text, never HTML
// (client IDs are whatever clients sent).
"use strict";

(function () {
	const pollEvery = 1000; // ms
	const requestTimeout = 5000; // ms
	const $ = (id) => document.getElementById(id);

	// What the page shows now, for whoever reads it from a script (the
	// browser test does): the last JSON and the map's points by client.
	const state = { last: null, points: new Map(), error: "" };
	window.herdStatus = state;

	// Formatting.
	function duration(seconds) {
		seconds = Math.max(0, Math.floor(seconds));
		const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
		const m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
		if (d > 0) return d + "d " + h + "h";
		if (h > 0) return h + "h " + m + "m";
		if (m > 0) return m + "m " + s + "s";
		return s + "s";
	}
	function ago(iso, now) {
		const t = Date.parse(iso);
		if (!t || t < 86400000) return "never";
		return duration((now - t) / 1000) + " ago";
	}
	function bytes(n) {
		const units = ["B", "KB", "MB", "GB", "TB"];
		let i = 0;
		while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
		return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
	}
	const count = (n) => Number(n).toLocaleString("en-US");
	function rate(r) {
		if (r === undefined || r === null) return "–";
		return r >= 100 ? count(Math.round(r)) : r.toFixed(1);
	}
	function el(tag, cls, text) {
		const e = document.createElement(tag);
		if (cls) e.className = cls;
		if (text !== undefined) e.textContent = text;
		return e;
	}
	function stat(label, value, busy) {
		const s = el("span", busy ? "busy" : "");
		s.append(label + " ", el("b", "", value));
		return s;
	}

	// The header and tiles.
	function drawSummary(v, now) {
		$("server").textContent = v.server || "(unnamed)";
		document.title = (v.server || "herd") + " · herd status";
		$("uptime").textContent = duration(v.uptime_seconds);
		$("clients").textContent = count(v.clients);
		$("rate-iamat").textContent = rate(v.rates && v.rates.iamat_per_second);
		$("rate-out").textContent = rate(v.rates && v.rates.flooded_out_per_second);
		$("rate-in").textContent = rate(v.rates && v.rates.flooded_in_per_second);
	}

	// The peer links, one card each.
	function drawPeers(v, now) {
		const box = $("peers");
		const cards = [];
		let up = 0;
		for (const p of v.peers) {
			if (p.up) up++;
			const card = el("article", "peer");
			card.dataset.peer = p.name;
			card.dataset.state = p.up ? "up" : "down";
			const top = el("div", "top");
			top.append(el("span", "name", p.name), el("span", "addr", p.address),
				el("span", "state", (p.up ? "up " : "down ") + duration((now - Date.parse(p.since)) / 1000)));
			const stats = el("div", "stats");
			stats.append(stat("queued", count(p.pending), p.pending > 0),
				stat("sent", count(p.records_sent) + " rec · " + bytes(p.bytes_sent)),
				stat("received", bytes(p.bytes_received)),
				stat("connects", count(p.connects)));
			card.append(top, stats);
			if (p.last_error) card.append(el("div", "error", p.last_error));
			const c = p.last_catch_up, running = p.catch_up;
			let catchup = !p.up ? "caught up when it returns"
				: running ? "catching up: " + count(running.records) + " records" +
					(running.after === 0 && v.clients > 0 ? " of about " + count(v.clients) : "") +
					", " + bytes(running.bytes) + " in " + running.seconds.toFixed(1) + " s"
				: p.catching_up ? "catching up since it connected"
				: p.exchange ? "catch-up exchange on" : "no catch-up exchange: whole table on reconnect";
			if (c) {
				catchup += " · last catch-up " + ago(c.at, now) + ": " + count(c.records) + " records" +
					(c.records > 0 ? ", " + bytes(c.bytes) + " in " + c.seconds.toFixed(2) + " s" : "") +
					(c.after === 0 ? " (whole table)" : "");
			}
			card.append(el("div", p.catching_up || running ? "catchup busy" : "catchup", catchup));
			cards.push(card);
		}
		if (cards.length === 0) cards.push(el("p", "empty", "No peers configured."));
		box.replaceChildren(...cards);
		const down = v.peers.length - up;
		$("peers-note").textContent = up + " up" + (down ? " · " + down + " down" : "");
	}

	// The storage.
	function drawStorage(v, now) {
		const dl = $("storage");
		const s = v.storage;
		const rows = [];
		const row = (k, val, bad) => { rows.push(el("dt", "", k), el("dd", bad ? "bad" : "", val)); };
		if (!s) {
			$("storage-note").textContent = "off";
			dl.replaceChildren(el("dd", "", "The table is in memory only."));
			return;
		}
		$("storage-note").textContent = s.fsync ? "fsync " + s.fsync : "";
		row("On disk", bytes(s.disk_bytes) + " (log " + bytes(s.log_bytes) + ", " + s.segments + " segment" + (s.segments === 1 ? "" : "s") + ")");
		row("Last fsync", s.last_fsync ? ago(s.last_fsync, now) + " · took " + (s.last_fsync_seconds * 1000).toFixed(1) + " ms" : "none yet");
		row("Last snapshot", s.last_snapshot ? ago(s.last_snapshot, now) + " · " + count(s.last_snapshot_records) + " records, " + bytes(s.last_snapshot_bytes) + " in " + s.last_snapshot_seconds.toFixed(2) + " s" : "none yet");
		row("Written", count(s.records) + " records · " + bytes(s.bytes_written) + " · " + count(s.fsyncs) + " fsyncs");
		row("Directory", s.dir);
		if (s.error) row("Error", s.error, true);
		dl.replaceChildren(...rows);
	}

	// The map: an equirectangular plot of the coastline, the sampled
	// clients and the latest updates.
	const map = { canvas: $("map"), coast: null, base: null, baseKey: "", fit: false };

	fetch("coastline.json").then((r) => r.ok ? r.json() : null).then((c) => {
		map.coast = c;
		map.base = null;
		if (state.last) drawMap(state.last);
	}).catch(() => {});

	$("fit").addEventListener("click", (e) => {
		map.fit = !map.fit;
		e.currentTarget.setAttribute("aria-pressed", String(map.fit));
		e.currentTarget.textContent = map.fit ? "Whole world" : "Zoom to clients";
		map.base = null;
		if (state.last) drawMap(state.last);
	});

	// view returns the longitude and latitude bounds drawn: the world, or
	// the clients' box with a margin, kept at the canvas's 2:1.
	function view(points) {
		if (!map.fit || points.length === 0) return { w: -180, e: 180, s: -90, n: 90 };
		let w = 180, e = -180, s = 90, n = -90;
		for (const p of points) {
			w = Math.min(w, p.lon); e = Math.max(e, p.lon);
			s = Math.min(s, p.lat); n = Math.max(n, p.lat);
		}
		let lonSpan = Math.max((e - w) * 1.2, 0.2), latSpan = Math.max((n - s) * 1.2, 0.1);
		if (lonSpan < latSpan * 2) lonSpan = latSpan * 2; else latSpan = lonSpan / 2;
		const cx = (w + e) / 2, cy = (s + n) / 2;
		return { w: cx - lonSpan / 2, e: cx + lonSpan / 2, s: cy - latSpan / 2, n: cy + latSpan / 2 };
	}

	function drawBase(ctx, width, height, v) {
		const key = width + "x" + height + ":" + v.w + "," + v.e + "," + v.s + "," + v.n;
		if (map.base && map.baseKey === key) return map.base;
		const base = document.createElement("canvas");
		base.width = width;
		base.height = height;
		const b = base.getContext("2d");
		b.fillStyle = "#0b1a2a";
		b.fillRect(0, 0, width, height);
		const x = (lon) => (lon - v.w) / (v.e - v.w) * width;
		const y = (lat) => (v.n - lat) / (v.n - v.s) * height;
		// The graticule every 30 degrees.
		b.strokeStyle = "rgba(147, 161, 176, 0.12)";
		b.lineWidth = 1;
		b.beginPath();
		for (let lon = -180; lon <= 180; lon += 30) { b.moveTo(x(lon), 0); b.lineTo(x(lon), height); }
		for (let lat = -60; lat <= 60; lat += 30) { b.moveTo(0, y(lat)); b.lineTo(width, y(lat)); }
		b.stroke();
		if (map.coast) {
			b.beginPath();
			for (const ring of map.coast) {
				b.moveTo(x(ring[0]), y(ring[1]));
				for (let i = 2; i < ring.length; i += 2) b.lineTo(x(ring[i]), y(ring[i + 1]));
			}
			b.fillStyle = "#1c2a38";
			b.fill("evenodd");
			b.strokeStyle = "#41566c";
			b.lineWidth = Math.max(1, width / 1200);
			b.stroke();
		}
		map.base = base;
		map.baseKey = key;
		return base;
	}

	function drawMap(v) {
		const canvas = map.canvas;
		const dpr = window.devicePixelRatio || 1;
		const width = Math.max(1, Math.round(canvas.clientWidth * dpr));
		const height = Math.max(1, Math.round(width / 2));
		if (canvas.width !== width || canvas.height !== height) {
			canvas.width = width;
			canvas.height = height;
		}
		const ctx = canvas.getContext("2d");
		const points = v.map.points;
		const recent = v.map.recent || [];
		const bounds = view(points.concat(recent));
		ctx.drawImage(drawBase(ctx, width, height, bounds), 0, 0);
		const x = (lon) => (lon - bounds.w) / (bounds.e - bounds.w) * width;
		const y = (lat) => (bounds.n - lat) / (bounds.n - bounds.s) * height;
		// Thousands of points: one path of small squares, one fill.
		// 2.5 CSS pixels on a wide map, 1.5 on a phone's.
		const size = Math.max(1.5, Math.min(2.5, width / dpr / 300)) * dpr;
		ctx.fillStyle = "rgba(88, 166, 255, 0.75)";
		ctx.beginPath();
		state.points = new Map();
		for (const p of points) {
			ctx.rect(x(p.lon) - size / 2, y(p.lat) - size / 2, size, size);
			state.points.set(p.client, [p.lat, p.lon]);
		}
		ctx.fill();
		// The latest updates, newest last so that it is on top.
		for (let i = recent.length - 1; i >= 0; i--) {
			const p = recent[i];
			state.points.set(p.client, [p.lat, p.lon]);
			const r = (i < 5 ? 5 : 3.5) * dpr;
			ctx.beginPath();
			ctx.arc(x(p.lon), y(p.lat), r, 0, 2 * Math.PI);
			ctx.fillStyle = i < 5 ? "#ffd33d" : "rgba(255, 211, 61, 0.55)";
			ctx.fill();
			ctx.lineWidth = 1.5 * dpr;
			ctx.strokeStyle = "#0b1a2a";
			ctx.stroke();
		}
		canvas.dataset.points = String(state.points.size);
		const shown = count(points.length);
		$("map-note").textContent = v.map.sampled
			? "a sample of " + shown + " of " + count(v.clients)
			: shown + " client" + (points.length === 1 ? "" : "s");
	}

	function drawRecent(v, now) {
		const items = [];
		for (const p of v.map.recent || []) {
			const li = el("li");
			li.dataset.client = p.client;
			li.title = p.client + " at " + p.lat + ", " + p.lon;
			li.append(el("span", "who", p.client), el("span", "via", "via " + p.server), el("span", "ago", ago(p.received_at, now)));
			items.push(li);
		}
		if (items.length === 0) items.push(el("li", "empty", "No updates yet."));
		$("recent").replaceChildren(...items);
	}

	function draw(v) {
		const now = Date.parse(v.now) || Date.now();
		drawSummary(v, now);
		drawPeers(v, now);
		drawStorage(v, now);
		drawMap(v);
		drawRecent(v, now);
	}

	function setLive(live, text) {
		const c = $("conn");
		c.dataset.live = String(live);
		document.body.dataset.live = String(live);
		c.textContent = text;
	}

	async function poll() {
		const ctl = new AbortController();
		const timer = setTimeout(() => ctl.abort(), requestTimeout);
		try {
			const r = await fetch("status.json", { cache: "no-store", signal: ctl.signal });
			if (!r.ok) throw new Error("HTTP " + r.status);
			const v = await r.json();
			state.last = v;
			state.error = "";
			draw(v);
			setLive(true, "live · " + new Date(v.now).toLocaleTimeString());
		} catch (e) {
			state.error = String(e && e.message || e);
			setLive(false, "not updating: " + state.error + (state.last ? " (showing " + new Date(state.last.now).toLocaleTimeString() + ")" : ""));
		} finally {
			clearTimeout(timer);
			setTimeout(poll, pollEvery);
		}
	}

	window.addEventListener("resize", () => { if (state.last) drawMap(state.last); });
	poll();
})();
