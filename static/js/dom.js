// Building the page from data without ever parsing data as HTML: every
// string from the server goes in as text, so an alarm message or a camera
// error cannot inject markup (and the CSP forbids inline script anyway).

const SVG = 'http://www.w3.org/2000/svg';

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** `h('p', {class: 'x'}, 'text', h('b', {}, 'bold'))` */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A `<time>` showing an RFC 3339 instant in the reader's time zone. */
export function timeEl(iso, { withDate = true } = {}) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, '—');
  return h('time', { datetime: date.toISOString() }, (withDate ? dateTime : timeOnly).format(date));
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Reads a message to screen-reader users without moving their focus. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // Clearing first makes the same text be announced twice in a row.
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

/** A random id that works on plain-http origins too (no crypto.randomUUID there). */
export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
