// Log in and create an account (`#/login`, `#/register`).

import { h } from '../dom.js';
import { describe } from '../messages.js';
import * as session from '../session.js';

function field(label, attrs) {
  const id = `f-${attrs.name}`;
  return h('p', { class: 'field' }, h('label', { for: id }, label), h('input', { id, ...attrs }));
}

function errorBox() {
  return h('div', { class: 'error', role: 'alert', hidden: true });
}

function show(box, text) {
  box.textContent = text;
  box.hidden = !text;
}

async function busy(form, work) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
}

export function login(root, { notice, prefill } = {}) {
  const error = errorBox();
  const form = h(
    'form',
    { class: 'card-form', method: 'post' },
    field('User name or email', { name: 'login', autocomplete: 'username', required: true, value: prefill ?? '' }),
    field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    error,
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Log in')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show(error, '');
    const data = new FormData(form);
    try {
      await busy(form, () => session.login(data.get('login').trim(), data.get('password')));
    } catch (err) {
      show(error, describe(err));
      form.elements.password.select();
    }
  });
  root.append(
    h(
      'section',
      { class: 'auth', 'aria-labelledby': 'view-title' },
      h('h1', { id: 'view-title', tabindex: -1 }, 'Log in to vigil'),
      notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
      form,
      h('p', {}, 'No account yet? ', h('a', { href: '#/register' }, 'Create one')),
    ),
  );
  (prefill ? form.elements.password : form.elements.login).focus();
}

export function register(root, { onRegistered }) {
  const error = errorBox();
  const form = h(
    'form',
    { class: 'card-form', method: 'post' },
    field('User name', {
      name: 'user_name',
      autocomplete: 'username',
      required: true,
      minlength: 3,
      maxlength: 32,
      pattern: '[A-Za-z0-9_.\\-]{3,32}',
      'aria-describedby': 'name-help',
    }),
    h('p', { id: 'name-help', class: 'help' }, '3–32 letters, digits, dots, dashes or underscores.'),
    field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
    field('Password', {
      name: 'password',
      type: 'password',
      autocomplete: 'new-password',
      required: true,
      minlength: 8,
      maxlength: 128,
      'aria-describedby': 'password-help',
    }),
    h('p', { id: 'password-help', class: 'help' }, 'At least 8 characters.'),
    error,
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create account')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    show(error, '');
    const data = new FormData(form);
    const name = data.get('user_name').trim();
    try {
      await busy(form, () => session.register(name, data.get('email').trim(), data.get('password')));
      onRegistered(name);
    } catch (err) {
      show(error, describe(err));
    }
  });
  root.append(
    h(
      'section',
      { class: 'auth', 'aria-labelledby': 'view-title' },
      h('h1', { id: 'view-title', tabindex: -1 }, 'Create an account'),
      form,
      h('p', {}, 'Already registered? ', h('a', { href: '#/login' }, 'Log in')),
    ),
  );
  form.elements.user_name.focus();
}
