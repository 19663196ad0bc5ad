// What to tell a person for each of the API's stable error codes
// (src/error.rs). The server's own message is shown where it carries the
// specifics (a limit, a field name).

function wait(err) {
  const secs = err.retryAfter;
  if (!secs) return 'a moment';
  return secs < 60 ? `${Math.ceil(secs)} s` : `${Math.ceil(secs / 60)} min`;
}

const TEXT = {
  network: () => 'The server could not be reached. Check the connection and try again.',
  invalid_credentials: () => 'Wrong user name, email or password.',
  login_throttled: (e) => `Too many failed logins. Wait ${wait(e)} and try again.`,
  user_name_taken: () => 'That user name is taken. Pick another one.',
  email_taken: () => 'An account with that email already exists. Log in instead.',
  validation_failed: (e) => `Please check the form: ${e.message}.`,
  quota_exhausted: () => 'Your upload quota is used up. An admin can raise it.',
  rate_limited: (e) => `Too many requests at once. Wait ${wait(e)} and try again.`,
  payload_too_large: (e) => `The file is too large: ${e.message}.`,
  image_too_large: (e) => `The image is too large: ${e.message}. Scale it down and try again.`,
  unsupported_media_type: () => 'That file is not an image. Choose a JPEG, PNG, WebP, BMP or GIF file.',
  invalid_image: () => 'That file is not an image vigil can read. Choose a JPEG, PNG, WebP, BMP or GIF file.',
  invalid_video: () => 'That file is not a video vigil can read. Choose a video file such as MP4, WebM, MKV or MOV.',
  queue_full: (e) => `The server has too much work queued. Wait ${wait(e)} and try again.`,
  job_finished: () => 'That job had ended already.',
  aborted: () => 'The upload was stopped.',
  forbidden: () => 'Only admins can see this.',
  invalid_token: () => 'Your session has ended. Please log in again.',
  unauthenticated: () => 'Your session has ended. Please log in again.',
  not_found: () => 'Not found: it may have been deleted, or it belongs to someone else.',
  invalid_query: (e) => `The filter is not valid: ${e.message}.`,
  database_unavailable: () => 'The server cannot reach its database right now. Try again in a moment.',
  not_ready: () => 'The server is starting up. Try again in a moment.',
  internal: () => 'Something went wrong on the server. Try again; if it keeps happening, tell an admin.',
};

/** A sentence for a person, from an ApiError (or anything thrown). */
export function describe(err) {
  const text = TEXT[err?.code];
  if (text) return text(err);
  if (err?.status >= 500) return TEXT.internal(err);
  return err?.message ? `Something went wrong: ${err.message}.` : 'Something went wrong.';
}
