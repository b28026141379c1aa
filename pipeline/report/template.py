"""The report page: one self-contained HTML file, no scripts, no external URLs.

The Content-Security-Policy forbids every load except data: images and inline styles,
so a browser refuses (and logs) anything that would leave the file.
"""

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="robots" content="noindex, nofollow">
<title>epistance comparison by {{ by_text }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1120px; margin: 0 auto; padding: 0 24px 48px; background: #fff; }
.banner { position: sticky; top: 0; background: #8b0000; color: #fff; padding: 8px 24px; font-weight: 600;
          letter-spacing: .02em; z-index: 2; }
h1 { font-size: 1.6rem; margin: 18px 0 4px; } h2 { margin-top: 36px; border-bottom: 2px solid #ddd; }
h3 { margin-top: 22px; }
.meta { color: #555; font-size: .92rem; }
.warnings { border: 2px solid #b00020; background: #fff2f2; padding: 8px 16px; margin: 16px 0; }
.warnings h2 { border: 0; margin: 4px 0; color: #b00020; font-size: 1.15rem; }
.warnings li { margin: 6px 0; }
.notes { border-left: 4px solid #888; background: #f4f4f4; padding: 6px 14px; margin: 12px 0; font-size: .92rem; }
figure { margin: 12px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
table { border-collapse: collapse; font-size: .86rem; margin: 8px 0 16px; display: block; overflow-x: auto; max-width: 100%; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
td { white-space: nowrap; } td.wrap { white-space: normal; min-width: 140px; }
tr.small td { background: #fff7e6; }
.sig { font-weight: 700; }
.muted { color: #888; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
td.text { text-align: left; max-width: 640px; }
.methods p { max-width: 900px; }
</style>
</head>
<body>
<div class="banner">Contains transcript text &mdash; local use only. Do not share or upload this file.</div>
<main>
<h1>Stance and affect by {{ by_text }}</h1>
<p class="meta">Corpus <code>{{ corpus_name }}</code> &middot; model <code>{{ model }}</code> &middot;
{{ n_sentences }} sentences from {{ n_speakers }} speakers in {{ groups|length }} groups &middot;
selection: {{ selection }} &middot; options hash <code>{{ options_hash }}</code></p>

{% if warnings %}
<section class="warnings" id="warnings">
<h2>Warnings: read before drawing conclusions</h2>
<ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>
</section>
{% endif %}

<h2 id="groups">Groups</h2>
<table>
<tr><th class="l">group</th>{% for key in by %}<th class="l">{{ key }}</th>{% endfor %}<th>speakers</th><th>transcripts</th><th>sentences</th><th class="l">note</th></tr>
{% for g in groups %}<tr class="{{ 'small' if g.small else '' }}"><td class="l">{{ g.group }}</td>{% for key in by %}<td class="l">{{ g['values'][key] }}</td>{% endfor %}<td>{{ g.n_speakers }}</td><td>{{ g.n_transcripts }}</td><td>{{ g.n_sentences }}</td><td class="l">{{ 'fewer than %d speakers'|format(min_speakers) if g.small else '' }}</td></tr>
{% endfor %}</table>
{% if notes %}<div class="notes"><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul></div>{% endif %}

{% for section in sections %}
<h2 id="{{ section.layer }}">{{ section.title }}</h2>
<p>{{ section.question }}</p>
{% if section.image %}
<figure><img src="{{ section.image }}" alt="{{ section.title }} plot" width="{{ section.width }}">
<figcaption>{{ section.caption }}</figcaption></figure>
{% endif %}
<h3>Shares</h3>
<table>
<tr><th class="l">group</th><th class="l">label</th><th>share</th><th>95% interval</th>{% if corrected %}<th>ACC-corrected</th><th>ACC 95% interval</th>{% endif %}<th>mean probability</th><th>speaker mean</th><th>positives / sentences</th><th>speakers</th></tr>
{% for r in section.shares %}<tr class="{{ 'small' if r.small else '' }}"><td class="l">{{ r.group }}</td><td class="l">{{ r.label }}</td><td>{{ r.proportion }}</td><td>{{ r.ci }}</td>{% if corrected %}<td>{{ r.acc }}</td><td>{{ r.acc_ci }}</td>{% endif %}<td>{{ r.meanprob }}</td><td>{{ r.speaker_mean }}</td><td>{{ r.counts }}</td><td>{{ r.n_speakers }}</td></tr>
{% endfor %}</table>
{% if section.omnibus %}
<h3>Do the groups differ? (omnibus tests)</h3>
<table>
<tr><th class="l">label</th><th class="l">method</th><th>statistic</th><th>df</th><th>p</th><th>p (Holm, across labels)</th><th class="l">groups tested / note</th></tr>
{% for t in section.omnibus %}<tr><td class="l">{{ t.label }}</td><td class="l">{{ t.method }}</td><td>{{ t.statistic }}</td><td>{{ t.df }}</td><td>{{ t.p }}</td><td class="{{ 'sig' if t.sig else '' }}">{{ t.p_holm }}</td><td class="l wrap">{{ t.note }}</td></tr>
{% endfor %}</table>
{% endif %}
{% if section.pairs %}
<h3>Pairwise contrasts</h3>
<p class="meta">The GEE odds ratio and its p value are the primary test. Bootstrap p values run too liberal with fewer
than about ten speakers per group; use the bootstrap difference as the effect size.</p>
{% if section.small_note %}<p class="meta">{{ section.small_note }}</p>{% endif %}
<table>
<tr><th class="l">label</th><th class="l">contrast</th><th>difference in share [95% CI]<br><span class="muted">cluster bootstrap</span></th><th>p (Holm)</th><th>odds ratio [95% CI]<br><span class="muted">GEE, population-averaged</span></th><th>p (Holm)</th><th>odds ratio [95% CI]<br><span class="muted">mixed model, typical speaker</span></th><th>p (Holm)</th><th class="l">notes</th></tr>
{% for p in section.pairs %}<tr><td class="l">{{ p.label }}</td><td class="l">{{ p.group_a }}<br>vs {{ p.group_b }}</td><td>{{ p.diff }}</td><td class="{{ 'sig' if p.boot_sig else '' }}">{{ p.boot_p }}</td><td>{{ p.gee }}</td><td class="{{ 'sig' if p.gee_sig else '' }}">{{ p.gee_p }}</td><td>{{ p.glmm }}</td><td class="{{ 'sig' if p.glmm_sig else '' }}">{{ p.glmm_p }}</td><td class="l wrap">{{ p.note }}</td></tr>
{% endfor %}</table>
{% endif %}
{% endfor %}

<h2 id="examples">Example sentences</h2>
<p class="notes">The sentences the model tagged with each label at the highest probability, per group (at most one
per speaker while others have candidates). They show what the model counts, not what is typical.
<strong>Transcript text: local use only.</strong></p>
{% for block in examples %}
<details{{ ' open' if block.open else '' }}><summary>{{ block.title }}</summary>
<table>
<tr><th class="l">group</th><th class="l">sentence</th><th>probability</th><th class="l">speaker</th><th class="l">sentence id</th></tr>
{% for e in block.rows %}<tr><td class="l">{{ e.group }}</td><td class="text">{{ e.text }}</td><td>{{ e.probability }}</td><td class="l">{{ e.speaker }}</td><td class="l"><code>{{ e.sentence_id }}</code></td></tr>
{% endfor %}</table>
</details>
{% endfor %}

<h2 id="methods">Methods</h2>
<section class="methods">
{% for paragraph in methods %}<p>{{ paragraph }}</p>
{% endfor %}
</section>
<p class="meta">Tables: {% for name in tables %}<code>{{ name }}</code>{{ ', ' if not loop.last else '' }}{% endfor %}.
Generated by epistance {{ version }}.</p>
</main>
</body>
</html>
"""
