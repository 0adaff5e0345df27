// Browser notifications while the tab is hidden, and Web Push through the service worker
// (/sw.js) once the server offers a VAPID key. Permission is asked only from a button.

import { optionalApi } from "./api.js";
import { $ } from "./dom.js";

let registration = null;

function supported() {
  return "Notification" in window;
}

function base64UrlToBytes(value) {
  const padded = (value + "===".slice((value.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  } catch {
    registration = null; // plain http on a LAN address: no service worker, tab notifications only
  }
  return registration;
}

function registerDevice(subscription) {
  const { endpoint, keys } = subscription.toJSON();
  return optionalApi("/api/devices/", {
    method: "POST",
    json: { kind: "webpush", subscription: { endpoint, keys }, name: navigator.userAgent.slice(0, 100) },
  });
}

/** Subscribes to Web Push and registers the subscription; quiet while the server has no push. */
export async function subscribePush() {
  if (!registration || !("PushManager" in window) || Notification.permission !== "granted") return;
  try {
    const key = await optionalApi("/api/push/vapid-public-key/");
    if (!key?.public_key) return;
    const subscribe = () =>
      registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: base64UrlToBytes(key.public_key),
      });
    const subscription = (await registration.pushManager.getSubscription()) || (await subscribe());
    try {
      await registerDevice(subscription);
    } catch (error) {
      if (error.body?.code !== "forbidden") throw error;
      // Another user registered this browser's subscription (they signed in here before):
      // a fresh one is ours, and theirs stops reaching this browser.
      await subscription.unsubscribe();
      await registerDevice(await subscribe());
    }
  } catch (error) {
    console.warn("IMS: Web Push unavailable", error);
  }
}

function drawPermissionButton() {
  $("notify-permission").hidden = !supported() || Notification.permission !== "default";
}

/** A system notification, only while the page is hidden. `tag` matches the service worker's. */
export async function notifyIfHidden({ title, body, tag, conversationId }) {
  if (document.visibilityState !== "hidden" || !supported() || Notification.permission !== "granted") return;
  const options = { body, tag, data: { conversationId } };
  if (registration) return registration.showNotification(title, options);
  const notification = new Notification(title, options);
  notification.onclick = () => {
    window.focus();
    if (conversationId) location.hash = `c=${conversationId}`;
  };
}

/** A click on a notification of the service worker's (sw.js openChat) asks this tab to show
 * that conversation: a hash change, as a link would, without reloading the page. */
function followServiceWorker() {
  navigator.serviceWorker?.addEventListener("message", (event) => {
    const conversationId = Number(event.data?.conversationId);
    if (event.data?.type === "ims:open" && Number.isInteger(conversationId)) location.hash = `c=${conversationId}`;
  });
}

export async function initNotify() {
  followServiceWorker();
  await registerServiceWorker();
  drawPermissionButton();
  $("notify-permission").addEventListener("click", async () => {
    await Notification.requestPermission();
    drawPermissionButton();
    await subscribePush();
  });
  if (supported() && Notification.permission === "granted") await subscribePush();
}

