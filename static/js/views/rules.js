// Alarm rules (`#/rules`): whose faces raise an alarm, per source
// (docs/alarm-rules.md). One editor for the caller's own rules and, for
// admins (the GET answer has `camera_rules`), one for the cameras'. Save
// replaces the whole set in one PUT; the server checks everything and
// names the rule and field it refuses, which is marked here.

import { request } from '../api.js';
import { announce, h, plural, timeEl } from '../dom.js';
import { describe } from '../messages.js';
import { allSubjects } from './people.js';

const WHEN = [
  ['any', 'Any face'],
  ['unknown', 'Only strangers'],
  ['watch_list', 'Only these people (watch-list)'],
  ['household', 'Everyone but these people (household)'],
];
const NEEDS_SUBJECTS = new Set(['watch_list', 'household']);
/** The subject list's heading, for the kinds that list subjects. */
const WHO_TEXT = {
  watch_list: 'Alarm only for',
  household: 'No alarm for',
};
/** A new schedule's window: the night. */
const DEFAULT_FROM = '22:00';
const DEFAULT_TO = '06:00';

/** How a refused field is named to a person. */
const PART_TEXT = {
  source: 'source',
  when: 'alarm for',
  subjects: 'people',
  schedule: 'time window',
  'schedule.from': 'start time',
  'schedule.to': 'end time',
};

const SETS = {
  rules: {
    title: 'Your rules',
    help: 'For your uploads and videos. The source is the label an upload was sent with (“upload” when it had none).',
    placeholder: 'every source',
  },
  camera_rules: {
    title: 'Cameras',
    help: 'For the cameras’ frames (their alarms have no owner). The source is the camera id.',
    placeholder: 'every camera',
  },
};

/** Unique ids for labels, across re-renders. */
let seq = 0;

/** `fields[0]` of a refusal (`rules[1].schedule.from`) and its problem. */
function refusedField(err) {
  const first = err?.fields?.[0];
  return first?.field ? { field: first.field, problem: first.problem ?? err.message } : null;
}

/** `rules[1].schedule.from` → { set: 'rules', index: 1, part: 'schedule.from' }. */
function parseField(field) {
  const m = /^(rules|camera_rules)(?:\[(\d+)\])?(?:\.(.+))?$/.exec(field ?? '');
  if (!m) return null;
  return { set: m[1], index: m[2] === undefined ? null : Number(m[2]), part: m[3] ?? null };
}

export function rules(root) {
  const status = h('p', { class: 'hint', role: 'status', id: 'rules-status' }, 'Loading…');
  const error = h('p', { class: 'error', role: 'alert', id: 'rules-error', hidden: true });
  const saved = h('p', { class: 'hint', id: 'rules-saved' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'rules-save', disabled: true }, 'Save');
  const cameraList = h('datalist', { id: 'rules-cameras' });
  const editors = h('div', { class: 'rule-editors' });
  const form = h(
    'form',
    { class: 'rules-form', method: 'post', 'aria-labelledby': 'view-title', novalidate: true },
    editors,
    cameraList,
    error,
    h('div', { class: 'actions' }, save),
    saved,
  );
  root.append(
    h(
      'section',
      { class: 'rules-view', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Alarm rules'), status),
      h('p', { class: 'hint' },
        'Detections are always stored and stay searchable in History; rules only decide which of them raise an alarm (and with it the notifications). ',
        'A source’s own rule wins over the rule without a source, which covers every other source. Times are the server’s local time.'),
      form,
    ),
  );

  let alive = true;
  let subjects = [];
  /** set name → { list, empty, note } of its editor, for the sets shown. */
  let shown = {};

  const rows = (set) => [...(shown[set]?.list.children ?? [])];

  const renumber = (set) => {
    const editor = shown[set];
    rows(set).forEach((row, i) => {
      row.dataset.index = String(i);
      row.querySelector('legend.rule-title').textContent = `Rule ${i + 1}`;
      row.querySelector('.rule-remove .visually-hidden').textContent = ` rule ${i + 1}`;
    });
    editor.empty.hidden = editor.list.children.length > 0;
  };

  /** One rule's fieldset, filled from `rule` (a stored rule, or `{when: 'any'}`). */
  const ruleRow = (set, rule) => {
    const id = `rule-${++seq}`;
    const chosen = new Set(rule.subjects ?? []);
    const source = h('input', {
      id: `${id}-source`,
      class: 'rule-source',
      name: 'source',
      value: rule.source ?? '',
      maxlength: 64,
      autocomplete: 'off',
      placeholder: SETS[set].placeholder,
      list: set === 'camera_rules' ? 'rules-cameras' : null,
      'aria-describedby': `${id}-source-help`,
    });
    const when = h(
      'select',
      { id: `${id}-when`, class: 'rule-when', name: 'when' },
      WHEN.map(([value, text]) => h('option', { value, selected: value === rule.when }, text)),
    );
    // The caller's subjects, and any the rule lists that are not among them
    // (a camera rule may name another admin's): kept, so saving loses nothing.
    const mine = new Set(subjects.map((s) => s.id));
    const others = [...chosen].filter((s) => !mine.has(s));
    const box = (subjectId, name) => {
      const boxId = `${id}-s-${subjectId}`;
      return h('li', {},
        h('input', { type: 'checkbox', id: boxId, class: 'rule-subject', value: subjectId, checked: chosen.has(subjectId) }),
        h('label', { for: boxId }, name));
    };
    const whoLegend = h('legend', {});
    const who = h(
      'fieldset',
      { class: 'rule-subjects' },
      whoLegend,
      subjects.length || others.length
        ? h('ul', { class: 'subject-boxes' },
          subjects.map((s) => box(s.id, s.name)),
          others.map((s) => box(s, `Someone else’s person (${s})`)))
        : h('p', { class: 'hint' }, 'Nobody to choose yet: add people under ', h('a', { href: '#/people' }, 'People'), '.'),
    );
    const scheduled = Boolean(rule.schedule);
    const timed = h('input', { type: 'checkbox', id: `${id}-timed`, class: 'rule-scheduled', checked: scheduled });
    const from = h('input', { type: 'time', id: `${id}-from`, class: 'rule-from', value: rule.schedule?.from ?? DEFAULT_FROM, disabled: !scheduled });
    const to = h('input', { type: 'time', id: `${id}-to`, class: 'rule-to', value: rule.schedule?.to ?? DEFAULT_TO, disabled: !scheduled });
    const problem = h('p', { class: ['rule-error', 'error'], id: `${id}-error`, hidden: true });
    const title = h('legend', { class: 'rule-title' }, 'Rule');
    const remove = h('button', { type: 'button', class: ['rule-remove', 'danger'] }, 'Remove', h('span', { class: 'visually-hidden' }));
    const row = h(
      'li',
      { class: 'rule', dataset: { index: '0' } },
      h(
        'fieldset',
        {},
        title,
        h('div', { class: 'rule-fields' },
          h('p', { class: 'field' },
            h('label', { for: `${id}-source` }, set === 'camera_rules' ? 'Camera' : 'Source'),
            source,
            h('span', { class: 'help-inline', id: `${id}-source-help` }, `Empty: ${SETS[set].placeholder}`)),
          h('p', { class: 'field' }, h('label', { for: `${id}-when` }, 'Alarm for'), when)),
        who,
        h('p', { class: 'rule-schedule' },
          timed,
          h('label', { for: `${id}-timed` }, 'Only between'),
          h('label', { for: `${id}-from`, class: 'visually-hidden' }, 'Start time'),
          from,
          h('span', { 'aria-hidden': 'true' }, 'and'),
          h('label', { for: `${id}-to`, class: 'visually-hidden' }, 'End time'),
          to),
        problem,
        h('div', { class: 'actions' }, remove),
      ),
    );
    const showWho = () => {
      who.hidden = !NEEDS_SUBJECTS.has(when.value);
      whoLegend.textContent = WHO_TEXT[when.value] ?? 'People';
    };
    showWho();
    when.addEventListener('change', showWho);
    timed.addEventListener('change', () => {
      from.disabled = to.disabled = !timed.checked;
    });
    remove.addEventListener('click', () => {
      const list = row.parentElement;
      const index = Number(row.dataset.index);
      row.remove();
      renumber(set);
      announce(`Rule ${index + 1} removed; save to keep the change`);
      // Focus goes to the rule that took its place, or to "Add rule".
      const next = list.children[index] ?? list.children[index - 1];
      (next?.querySelector('.rule-source') ?? shown[set].add).focus();
    });
    return row;
  };

  /** A rule as the API takes it, from its row. */
  const ruleOf = (row) => {
    const rule = {};
    const source = row.querySelector('.rule-source').value.trim();
    if (source) rule.source = source;
    rule.when = row.querySelector('.rule-when').value;
    if (NEEDS_SUBJECTS.has(rule.when)) {
      rule.subjects = [...row.querySelectorAll('.rule-subject:checked')].map((box) => box.value);
    }
    if (row.querySelector('.rule-scheduled').checked) {
      rule.schedule = { from: row.querySelector('.rule-from').value, to: row.querySelector('.rule-to').value };
    }
    return rule;
  };

  const editor = (set, list) => {
    const headingId = `rules-${set}-h`;
    const ol = h('ol', { class: 'rule-list', 'aria-labelledby': headingId });
    const empty = h('p', { class: ['hint', 'rule-empty'] },
      set === 'camera_rules' ? 'No rules: every face a camera sees raises an alarm.' : 'No rules: every face raises an alarm.');
    const note = h('p', { class: ['rule-error', 'error', 'editor-error'], id: `rules-${set}-error`, hidden: true });
    const add = h('button', { type: 'button', class: 'rule-add' }, 'Add rule');
    const section = h(
      'section',
      { class: 'rule-editor', dataset: { set }, 'aria-labelledby': headingId },
      h('h2', { id: headingId }, SETS[set].title),
      h('p', { class: 'hint' }, SETS[set].help),
      empty,
      ol,
      note,
      h('div', { class: 'actions' }, add),
    );
    shown[set] = { list: ol, empty, note, add };
    ol.append(...list.map((rule) => ruleRow(set, rule)));
    add.addEventListener('click', () => {
      const row = ruleRow(set, { when: 'any' });
      ol.append(row);
      renumber(set);
      row.querySelector('.rule-source').focus();
    });
    renumber(set);
    return section;
  };

  const render = (answer) => {
    shown = {};
    const sections = [editor('rules', answer.rules ?? [])];
    if (Array.isArray(answer.camera_rules)) sections.push(editor('camera_rules', answer.camera_rules));
    editors.replaceChildren(...sections);
    const n = (answer.rules?.length ?? 0) + (answer.camera_rules?.length ?? 0);
    status.textContent = n ? plural(n, 'rule') : 'No rules yet';
  };

  const clearErrors = () => {
    error.hidden = true;
    error.textContent = '';
    for (const el of form.querySelectorAll('.rule-error')) {
      el.hidden = true;
      el.textContent = '';
    }
    for (const el of form.querySelectorAll('.rule.invalid')) el.classList.remove('invalid');
    for (const el of form.querySelectorAll('[aria-invalid]')) {
      el.removeAttribute('aria-invalid');
      const described = (el.getAttribute('aria-describedby') ?? '').split(' ').filter((d) => d && !d.endsWith('-error'));
      if (described.length) el.setAttribute('aria-describedby', described.join(' '));
      else el.removeAttribute('aria-describedby');
    }
  };

  /** The controls of `row` that a refused `part` names. */
  const controls = (row, part) => {
    const q = (css) => [...row.querySelectorAll(css)];
    if (!part) return [];
    if (part.startsWith('source')) return q('.rule-source');
    if (part.startsWith('when')) return q('.rule-when');
    if (part.startsWith('subjects')) return q('.rule-subject');
    if (part === 'schedule.from') return q('.rule-from');
    if (part === 'schedule.to') return q('.rule-to');
    if (part.startsWith('schedule')) return q('.rule-from, .rule-to');
    return [];
  };

  /** Marks the rule and field a refusal names; the sentence for the alert. */
  const markRefusal = (refused) => {
    const where = parseField(refused.field);
    const editorOf = where && shown[where.set];
    if (!editorOf) return { text: `Not saved: ${refused.problem}.` };
    const title = SETS[where.set].title;
    const row = where.index === null ? null : rows(where.set)[where.index];
    if (!row) {
      editorOf.note.textContent = refused.problem;
      editorOf.note.hidden = false;
      return { text: `Not saved. ${title}: ${refused.problem}.` };
    }
    const problem = row.querySelector('.rule-error');
    problem.textContent = refused.problem;
    problem.hidden = false;
    row.classList.add('invalid');
    const marked = controls(row, where.part);
    for (const el of marked) {
      el.setAttribute('aria-invalid', 'true');
      const described = (el.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
      el.setAttribute('aria-describedby', [...described, problem.id].join(' '));
    }
    const part = where.part ? ` (${PART_TEXT[where.part] ?? where.part})` : '';
    return { text: `Not saved. ${title}, rule ${where.index + 1}${part}: ${refused.problem}.`, focus: marked.find((el) => !el.disabled) };
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (save.disabled) return;
    clearErrors();
    const body = { rules: rows('rules').map(ruleOf) };
    if (shown.camera_rules) body.camera_rules = rows('camera_rules').map(ruleOf);
    save.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const answer = await request('PUT', '/api/v1/alarm-rules', { json: body });
      if (!alive) return;
      render(answer);
      saved.replaceChildren('Saved at ', timeEl(new Date().toISOString(), { withDate: false }), '.');
      announce('Alarm rules saved');
    } catch (err) {
      if (!alive) return;
      const refused = refusedField(err);
      const marked = refused ? markRefusal(refused) : null;
      error.textContent = marked?.text ?? describe(err);
      error.hidden = false;
      marked?.focus?.focus();
    } finally {
      if (alive) {
        save.disabled = false;
        form.removeAttribute('aria-busy');
      }
    }
  });

  const load = async () => {
    const [answer, mine] = await Promise.all([request('GET', '/api/v1/alarm-rules'), allSubjects()]);
    if (!alive) return;
    subjects = mine;
    render(answer);
    save.disabled = false;
    if (Array.isArray(answer.camera_rules)) {
      // Camera ids as suggestions for the cameras' sources; none is fine.
      request('GET', '/api/v1/cameras')
        .then((cameras) => alive && cameraList.replaceChildren(...cameras.map((c) => h('option', { value: c.id }))))
        .catch(() => {});
    }
  };
  load().catch((err) => {
    if (!alive) return;
    status.textContent = '';
    error.textContent = describe(err);
    error.hidden = false;
  });

  return () => {
    alive = false;
  };
}
