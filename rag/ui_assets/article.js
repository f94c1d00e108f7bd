
watch('value', () => {
  const mark = element.querySelector('mark.cited, mark.passage');
  if (mark) mark.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
});
