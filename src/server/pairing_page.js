// The pairing page's script. The one-time secret arrives in the URL fragment, which the
// browser never sends to a server; it is read once and removed from the address bar and
// history before anything else happens.
(function () {
  "use strict";
  var secret = (location.hash || "").replace(/^#/, "").trim().toUpperCase();
  history.replaceState(null, "", location.pathname);
  var status = document.getElementById("status");
  var form = document.getElementById("form");
  var say = function (text) { status.textContent = text; };

  function openStore() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open("aisopod-device", 1);
      open.onupgradeneeded = function () { open.result.createObjectStore("keys"); };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }

  function put(db, name, value) {
    return new Promise(function (resolve, reject) {
      var tx = db.transaction("keys", "readwrite");
      tx.objectStore("keys").put(value, name);
      tx.oncomplete = function () { resolve(); };
      tx.onerror = function () { reject(tx.error); };
    });
  }

  async function post(path, body) {
    var response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      referrerPolicy: "no-referrer",
      cache: "no-store"
    });
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      throw new Error((data.error && data.error.message) || ("HTTP " + response.status));
    }
    return data;
  }

  async function pair(name) {
    // Non-extractable: the private key can sign but never leave this browser.
    var keys = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    var jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
    var db = await openStore();
    await put(db, "device", keys);
    var started = await post("/pair/claim", {
      secret: secret,
      device_name: name,
      public_key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }
    });
    secret = "";
    var tokens = started.tokens;
    if (!tokens) {
      document.getElementById("code").textContent = started.code;
      document.getElementById("code-line").hidden = false;
      say("Waiting for confirmation on the device…");
      for (;;) {
        await new Promise(function (r) { setTimeout(r, 2000); });
        var polled = await post("/pair/claim/" + encodeURIComponent(started.id) + "/poll",
          { poll_token: started.poll_token });
        if (polled.status === "confirmed") { tokens = polled.tokens; break; }
        if (polled.status !== "waiting") { throw new Error("pairing " + polled.status); }
      }
    }
    await put(db, "tokens", tokens);
    document.getElementById("code-line").hidden = true;
    say("Paired. This phone is now a trusted device.");
  }

  if (!secret) {
    say("This page needs the pairing code from the QR on the device. Scan it again.");
    return;
  }
  say("Name this phone, then press Pair.");
  form.hidden = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    form.hidden = true;
    say("Pairing…");
    pair(document.getElementById("name").value).catch(function (err) {
      say("Pairing failed: " + err.message);
    });
  });
}());
