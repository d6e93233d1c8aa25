// A small stand-in for a browser, to test a page's script under node without a browser:
// elements with ids, text, classes, `hidden`, events; a WebSocket, XMLHttpRequest and
// timers the test drives by hand. onionhost_sdk::testing::script_test runs a test with it.
// It models only what onionhost's pages use; a script that needs more fails loudly (an
// undefined method), never silently.
"use strict";

const vm = require("vm");
const assert = require("assert");

class Node {
  constructor() {
    this.parentNode = null;
  }
  remove() {
    if (this.parentNode) {
      const siblings = this.parentNode.children;
      siblings.splice(siblings.indexOf(this), 1);
      this.parentNode = null;
    }
  }
}

class Text extends Node {
  constructor(text) {
    super();
    this.data = String(text);
  }
  get textContent() {
    return this.data;
  }
}

class Element extends Node {
  constructor(tag, id) {
    super();
    this.tagName = tag.toUpperCase();
    this.id = id || "";
    this.children = [];
    this.listeners = {};
    this.attributes = {};
    this.dataset = {};
    this.className = "";
    this.hidden = false;
    this.disabled = false;
    this.value = "";
    this.type = "";
    this.dir = "";
    this.max = 0;
    this.scrollTop = 0;
    // A list of lines: each line is 20 px high, the box shows `clientHeight` of them.
    this.clientHeight = 200;
    this.files = [];
  }
  get scrollHeight() {
    return Math.max(this.clientHeight, this.children.length * 20);
  }
  get classList() {
    const element = this;
    const names = () => new Set(element.className.split(/\s+/).filter(Boolean));
    return {
      toggle(name, on) {
        const set = names();
        const add = on === undefined ? !set.has(name) : on;
        if (add) {
          set.add(name);
        } else {
          set.delete(name);
        }
        element.className = Array.from(set).join(" ");
      },
      add(name) {
        this.toggle(name, true);
      },
      remove(name) {
        this.toggle(name, false);
      },
      contains(name) {
        return names().has(name);
      },
    };
  }
  adopt(nodes) {
    return nodes.map((node) => {
      const child = node instanceof Node ? node : new Text(node);
      child.remove();
      child.parentNode = this;
      return child;
    });
  }
  append(...nodes) {
    this.children.push(...this.adopt(nodes));
  }
  appendChild(node) {
    this.append(node);
    return node;
  }
  prepend(...nodes) {
    this.children.unshift(...this.adopt(nodes));
  }
  replaceChildren(...nodes) {
    for (const child of this.children) {
      child.parentNode = null;
    }
    this.children = [];
    this.append(...nodes);
  }
  get firstElementChild() {
    return this.children.find((child) => child instanceof Element) || null;
  }
  get elements() {
    return this.children.filter((child) => child instanceof Element);
  }
  get textContent() {
    return this.children.map((child) => child.textContent).join("");
  }
  set textContent(text) {
    this.replaceChildren(String(text));
  }
  contains(other) {
    for (let node = other; node; node = node.parentNode) {
      if (node === this) {
        return true;
      }
    }
    return false;
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
  getAttribute(name) {
    return name in this.attributes ? this.attributes[name] : null;
  }
  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }
  // Fires `type` at this element and, unless stopped, at its ancestors; returns the event.
  dispatch(type, fields) {
    const event = Object.assign(
      {
        type,
        target: this,
        defaultPrevented: false,
        preventDefault() {
          this.defaultPrevented = true;
        },
      },
      fields || {}
    );
    for (let node = this; node; node = node.parentNode) {
      for (const listener of (node.listeners && node.listeners[type]) || []) {
        listener.call(node, event);
      }
    }
    return event;
  }
  requestSubmit() {
    this.dispatch("submit");
  }
  reset() {
    this.resetCount = (this.resetCount || 0) + 1;
  }
}

// Builds a page: `ids` maps each id to its tag; elements listed in `inside` are put in the
// element named by their value (so events bubble as on the page).
function page(ids, inside, options) {
  const byId = {};
  for (const [id, tag] of Object.entries(ids)) {
    byId[id] = new Element(tag, id);
  }
  for (const [id, parent] of Object.entries(inside || {})) {
    byId[parent].append(byId[id]);
  }
  const timers = [];
  const sockets = [];
  const requests = [];
  const windowListeners = {};
  const storage = {};
  const browser = {
    byId,
    timers,
    sockets,
    requests,
    reloads: 0,
    // Runs the timers that are due, in order, as the browser's clock would.
    runTimers() {
      const due = timers.splice(0, timers.length);
      for (const timer of due) {
        timer.callback();
      }
      return due.length;
    },
    dispatchToWindow(type, fields) {
      const event = Object.assign(
        { type, defaultPrevented: false, preventDefault() { this.defaultPrevented = true; } },
        fields || {}
      );
      for (const listener of windowListeners[type] || []) {
        listener(event);
      }
      return event;
    },
  };
  class WebSocket {
    constructor(url) {
      this.url = String(url);
      this.sent = [];
      this.readyState = WebSocket.CONNECTING;
      sockets.push(this);
    }
    send(data) {
      this.sent.push(JSON.parse(data));
    }
    // What the test calls: the server's side.
    open() {
      this.readyState = WebSocket.OPEN;
      this.onopen && this.onopen({});
    }
    receive(message) {
      this.onmessage && this.onmessage({ data: JSON.stringify(message) });
    }
    close(code) {
      this.readyState = WebSocket.CLOSED;
      this.onclose && this.onclose({ code });
    }
  }
  WebSocket.CONNECTING = 0;
  WebSocket.OPEN = 1;
  WebSocket.CLOSED = 3;
  class XMLHttpRequest {
    constructor() {
      this.headers = {};
      this.upload = new Element("upload");
      this.listeners = {};
      this.status = 0;
      this.responseText = "";
      requests.push(this);
    }
    open(method, url) {
      this.method = method;
      this.url = url;
    }
    setRequestHeader(name, value) {
      this.headers[name] = value;
    }
    addEventListener(type, listener) {
      (this.listeners[type] = this.listeners[type] || []).push(listener);
    }
    send(body) {
      this.body = body;
    }
    // What the test calls: the server's side.
    progress(loaded, total) {
      this.upload.dispatch("progress", { lengthComputable: true, loaded, total });
    }
    answer(status, value) {
      this.status = status;
      this.responseText = typeof value === "string" ? value : JSON.stringify(value);
      for (const listener of this.listeners.load || []) {
        listener({});
      }
    }
  }
  const window = {
    matchMedia(query) {
      return { matches: Boolean(options && options.media && options.media[query]) };
    },
    addEventListener(type, listener) {
      (windowListeners[type] = windowListeners[type] || []).push(listener);
    },
  };
  const context = {
    window,
    document: {
      getElementById: (id) => byId[id] || null,
      createElement: (tag) => new Element(tag),
      title: "",
    },
    sessionStorage: {
      getItem: (key) => (key in storage ? storage[key] : null),
      setItem: (key, value) => {
        storage[key] = String(value);
      },
    },
    location: {
      href: "http://test.onion/",
      protocol: "http:",
      host: "test.onion",
      reload() {
        browser.reloads += 1;
      },
    },
    WebSocket,
    XMLHttpRequest,
    FormData: class FormData {
      constructor(form) {
        this.form = form;
      }
    },
    TextEncoder,
    URL,
    setTimeout(callback, delay) {
      timers.push({ callback, delay });
      return timers.length;
    },
    clearTimeout() {},
    console,
  };
  browser.run = function (...scripts) {
    vm.createContext(context);
    for (const script of scripts) {
      vm.runInContext(script, context);
    }
    return browser;
  };
  browser.context = context;
  return browser;
}

// The text of every element child of `element`, one string each.
function lines(element) {
  return element.elements.map((child) => child.textContent);
}

module.exports = { page, lines, assert, Element };
