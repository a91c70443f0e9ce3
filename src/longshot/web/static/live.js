// Longshot web view: swaps in the parts of a page the server sends (live runs) or asks for (replay).
(function () {
  "use strict";
  var body = document.body;
  var updates = [];  // [received at (s), last event ts of the update]: read by the browser tests and the benchmark
  window.longshotUpdates = updates;

  function apply(data) {
    Object.keys(data.parts).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.innerHTML = data.parts[id]; }
    });
    if (data.last_ts !== undefined) {
      updates.push([Date.now() / 1000, data.last_ts]);
      if (updates.length > 20000) { updates.splice(0, 10000); }
    }
  }

  var stream = body.dataset.stream;
  if (stream && window.EventSource) {
    var state = document.getElementById("live-state");
    var source = new EventSource(stream);
    source.addEventListener("parts", function (ev) { apply(JSON.parse(ev.data)); });
    source.onopen = function () { if (state) { state.textContent = "live"; state.className = "live"; } };
    source.onerror = function () { if (state) { state.textContent = "reconnecting"; state.className = "live off"; } };
  }

  var frames = body.dataset.replay;
  if (!frames) { return; }
  var slider = document.getElementById("replay-time");
  var where = document.getElementById("replay-where");
  var speed = document.getElementById("replay-speed");
  var play = document.getElementById("replay-play");
  var total = parseInt(body.dataset.total, 10);
  var duration = parseFloat(body.dataset.duration);
  var upto = total;
  var timer = null;
  var busy = false;

  function show(query) {
    if (busy) { return Promise.resolve(); }
    busy = true;
    return fetch(frames + "?" + query, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        apply(data);
        upto = data.upto;
        slider.value = data.at;
        where.textContent = data.upto + " / " + data.total + " events · " + data.at.toFixed(1) + "s";
      })
      .finally(function () { busy = false; });
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; play.textContent = "▶ play"; } }
  slider.addEventListener("input", function () { stop(); show("at=" + slider.value); });
  document.getElementById("replay-start").addEventListener("click", function () { stop(); show("upto=0"); });
  document.getElementById("replay-prev").addEventListener("click", function () { stop(); show("upto=" + Math.max(0, upto - 1)); });
  document.getElementById("replay-next").addEventListener("click", function () { stop(); show("upto=" + Math.min(total, upto + 1)); });
  play.addEventListener("click", function () {
    if (timer) { stop(); return; }
    var at = upto >= total ? 0 : parseFloat(slider.value);
    play.textContent = "pause";
    timer = setInterval(function () {
      at += 0.25 * parseFloat(speed.value);
      if (at >= duration) { at = duration; stop(); }
      show("at=" + at.toFixed(3));
    }, 250);
  });
}());
