
window.__ragOpen = (key) => { props.value = key + '@' + Date.now(); trigger('click'); };
if (!window.__ragLinks) {
  window.__ragLinks = true;
  const fallback = (text) => {
    const area = document.createElement('textarea');
    area.value = text; area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select();
    let ok = false; try { ok = document.execCommand('copy'); } catch (err) {}
    area.remove(); return ok;
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a[href^="#cite-"], a[href^="#copy-"]') : null;
    if (!link) return;
    event.preventDefault(); event.stopPropagation();
    const href = link.getAttribute('href');
    if (href.startsWith('#cite-')) { window.__ragOpen(href.slice(6)); return; }
    const holder = link.parentElement;
    const source = holder ? holder.querySelector('.copy-text') : null;
    const text = source ? source.textContent : '';
    const done = () => { link.classList.add('copied'); setTimeout(() => link.classList.remove('copied'), 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => { if (fallback(text)) done(); });
    } else if (fallback(text)) { done(); }
  }, true);
}
