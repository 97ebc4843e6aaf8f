// The sign-in page's one script: a redirect to sign-in keeps the address's #fragment (the
// dashboard's view, e.g. #scope=team&id=T0003), which the server never sees; hand it on so
// that the user lands on the view they asked for.
const hash = window.location.hash;
if (hash) {
  const next = document.querySelector('input[name="next"]');
  if (next && next.value === '/') next.value = `/${hash}`;
  const sso = document.getElementById('sso');
  if (sso && sso.getAttribute('href') === '/auth/sso?next=%2F') {
    sso.setAttribute('href', `/auth/sso?next=${encodeURIComponent(`/${hash}`)}`);
  }
}
