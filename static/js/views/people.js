// People (`#/people`): the subjects you enrolled, each with a face
// thumbnail and its number of faces; create, rename, delete, and enrol a
// face by dropping (or choosing) a photo on the subject's card.

import { request } from '../api.js';
import { announce, h, plural } from '../dom.js';
import { describe } from '../messages.js';

/** Every subject of the caller, for the views that offer "This is…". */
export async function allSubjects() {
  const subjects = [];
  let cursor = null;
  do {
    const page = await request('GET', '/api/v1/subjects', { query: { limit: 200, cursor } });
    subjects.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return subjects.sort((a, b) => a.name.localeCompare(b.name));
}

/** Enrols the largest face of `file` into `subject`. */
export function enrolFile(subjectId, file) {
  const body = new FormData();
  body.append('image', file);
  return request('POST', `/api/v1/subjects/${subjectId}/faces`, { body });
}

const REFUSALS = {
  no_face: 'No face was found in that photo.',
  face_too_small: 'The face in that photo is too small to recognise; use a closer photo.',
  no_embedding: 'The face in that photo cannot be used (turned away or cut off); use a frontal photo.',
};

/** What to tell the user about a failed enrolment. */
export function enrolError(err) {
  return REFUSALS[err?.code] ?? describe(err);
}

export function people(root) {
  const status = h('p', { class: 'hint', role: 'status' }, 'Loading…');
  const list = h('ul', { class: 'people', 'aria-label': 'Subjects' });
  const nameInput = h('input', { id: 'new-subject', name: 'name', required: true, maxlength: 64, autocomplete: 'off' });
  const createError = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'new-subject' },
    h('label', { for: 'new-subject' }, 'Name'),
    nameInput,
    h('button', { type: 'submit' }, 'Add person'),
    createError,
  );
  root.append(
    h(
      'section',
      { class: 'people-view', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'People')),
      h('p', { class: 'hint' }, 'Faces of the people listed here are named in uploads', ' (and, for admins, on cameras). Drop a photo on a person to enrol their face; the largest face of the photo is used.'),
      form,
      status,
      list,
    ),
  );
  let alive = true;

  const card = (subject) => {
    const note = h('p', { class: 'card-error', role: 'alert', hidden: true });
    const say = (text) => {
      note.textContent = text;
      note.hidden = !text;
    };
    const file = h('input', { type: 'file', accept: 'image/*', class: 'visually-hidden', id: `enrol-${subject.id}` });
    const enrol = async (chosen) => {
      if (!chosen) return;
      say('');
      item.classList.add('busy');
      try {
        await enrolFile(subject.id, chosen);
        announce(`Face enrolled for ${subject.name}`);
        await load();
      } catch (err) {
        say(enrolError(err));
      } finally {
        item.classList.remove('busy');
      }
    };
    file.addEventListener('change', () => enrol(file.files[0]));
    // Renaming happens in place: the name becomes a field with Save.
    const title = h('h2', {}, subject.name);
    const rename = () => {
      const field = h('input', { value: subject.name, maxlength: 64, 'aria-label': `New name for ${subject.name}`, class: 'rename' });
      const save = async (event) => {
        event.preventDefault();
        const name = field.value.trim();
        if (!name || name === subject.name) return load();
        try {
          await request('PATCH', `/api/v1/subjects/${subject.id}`, { json: { name } });
          announce(`${subject.name} is now ${name}`);
          await load();
        } catch (err) {
          say(err.code === 'subject_name_taken' ? 'You already have a person with that name.' : describe(err));
        }
      };
      title.replaceChildren(h('form', { class: 'rename-form', onsubmit: save }, field, h('button', { type: 'submit' }, 'Save')));
      field.focus();
    };
    // Deleting takes a second click on the same button: nothing is erased by a slip.
    let armed = false;
    const remove = async (event) => {
      if (!armed) {
        armed = true;
        event.currentTarget.textContent = `Really delete ${subject.name}?`;
        return;
      }
      try {
        await request('DELETE', `/api/v1/subjects/${subject.id}`);
        announce(`${subject.name} deleted`);
        await load();
      } catch (err) {
        say(describe(err));
      }
    };
    const item = h(
      'li',
      { class: 'person', 'data-subject-id': subject.id },
      subject.thumbnail_url
        ? h('img', { class: 'thumb', src: subject.thumbnail_url, alt: `Face of ${subject.name}`, width: 96, height: 96 })
        : h('div', { class: 'thumb empty', 'aria-hidden': 'true' }, '?'),
      h('div', { class: 'person-text' },
        title,
        h('p', { class: 'face-count' }, plural(subject.face_count, 'face'))),
      h('div', { class: 'person-actions' },
        h('label', { for: `enrol-${subject.id}`, class: 'like-button' }, 'Add a photo'),
        file,
        h('button', { type: 'button', class: 'rename-button', onclick: rename }, 'Rename'),
        h('button', { type: 'button', class: ['danger', 'delete'], onclick: remove }, 'Delete')),
      note,
    );
    item.addEventListener('dragover', (event) => {
      event.preventDefault();
      item.classList.add('drop');
    });
    item.addEventListener('dragleave', () => item.classList.remove('drop'));
    item.addEventListener('drop', (event) => {
      event.preventDefault();
      item.classList.remove('drop');
      enrol(event.dataTransfer.files[0]);
    });
    return item;
  };

  const load = async () => {
    const subjects = await allSubjects();
    if (!alive) return;
    list.replaceChildren(...subjects.map(card));
    status.textContent = subjects.length ? plural(subjects.length, 'person', 'people') : 'Nobody yet: add the people you want recognised.';
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    createError.hidden = true;
    try {
      await request('POST', '/api/v1/subjects', { json: { name: nameInput.value } });
      nameInput.value = '';
      await load();
    } catch (err) {
      createError.textContent = err.code === 'subject_name_taken' ? 'You already have a person with that name.' : describe(err);
      createError.hidden = false;
    }
  });

  load().catch((err) => alive && (status.textContent = describe(err)));
  return () => {
    alive = false;
  };
}
