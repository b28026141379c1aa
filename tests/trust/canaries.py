"""Synthetic canary transcripts for the privacy tests: fake identifiers, never real data.

Each turn is written as `SPEAKER: text`, with every identifier marked inline as
`{{TYPE:value}}`. `parse()` returns the plain text and the marked spans. Two sets:

- DEV: written first and used while the detector was built (its misses were looked at);
- HOLDOUT: written at the same time, before the detector existed, and only scored at the
  end. docs/privacy.md reports the two sets separately.

Types: PERSON, PLACE, ORG, DATE, PHONE, EMAIL, NHS_NUMBER, POSTCODE. The names are made
up and deliberately varied (West African, South and East Asian, Arabic, Slavic, Irish,
Nordic, Māori, Hispanic, Turkish, Hungarian, Anglo), first names alone, full names, with
titles, possessives and hyphens.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MARK = re.compile(r"\{\{(?P<type>[A-Z_]+):(?P<value>[^{}]+)\}\}")
PATTERNED = ("PHONE", "EMAIL", "NHS_NUMBER", "POSTCODE", "DATE")

DEV = """\
Interviewer: Thanks for joining. Could you start by telling me your name and where you work?
P01: Sure, I'm {{PERSON:Oluwaseun}}, {{PERSON:Oluwaseun Adebayo-Okafor}} in full, and I'm a staff nurse at {{ORG:Northgate Medical Practice}} in {{PLACE:Bradford}}.
Interviewer: And how long have you been there?
P01: Since {{DATE:14 March 2016}}. Before that I was at {{ORG:St Aldhelm's Hospital}} in {{PLACE:Wakefield}} with {{PERSON:Dr Ferreira}}.
P01: My manager, {{PERSON:Priya Raghunathan}}, was brilliant. {{PERSON:Priya}} always had time for us.
Interviewer: What was the hardest part?
P01: Honestly the night shifts. My daughter {{PERSON:Amara}} was only two, and my husband {{PERSON:Kwabena}} was working in {{PLACE:Leeds}}.
P01: You can ring me on {{PHONE:07700 900461}} if you need anything else, or email {{EMAIL:o.adebayo.test@example.org}}.
Interviewer: That's kind. Shall we talk about the ward?
P02: Yeah. When {{PERSON:Xiaoming Zhang}} joined the team it changed everything. {{PERSON:Xiaoming}} set up the peer group.
P02: We met every Thursday at the {{ORG:Riverside Community Centre}} on {{PLACE:Hollins Lane}}, {{POSTCODE:BD7 1DP}}.
P02: I remember {{PERSON:Siobhan Ni Bhriain}} telling me it saved her. {{PERSON:Siobhan}} had been admitted on {{DATE:03/11/2019}}.
P02: Her NHS number was on the whiteboard, {{NHS_NUMBER:943 476 5919}}, which was a breach really.
Interviewer: Mm-hm. What happened then?
P02: {{PERSON:Mohammed Al-Rashid}} from the crisis team came out. He gave me his mobile, {{PHONE:+44 7700 900123}}.
P02: And {{PERSON:Dmitri Volkov}}, the pharmacist, sorted her lithium. {{PERSON:Dmitri}} rang {{PERSON:Mrs Okonkwo}} the same day.
P03: For me it was {{PERSON:Nurse Bridget}} who made the difference. {{PERSON:Bridget}} listened.
P03: I was living in {{PLACE:Sheffield}} then, at {{POSTCODE:S10 2TN}}, and my GP was {{PERSON:Dr Hiroshi Tanaka}}.
P03: He wrote to me on {{DATE:2 June 2021}} and again on the {{DATE:15th of July}}.
P03: My brother {{PERSON:Tariq}} drove me to {{ORG:Barnsley General}} on {{DATE:Friday 9 July 2021}}.
P03: The discharge letter had my NHS number, {{NHS_NUMBER:4010232137}}, and the ward's number, {{PHONE:0114 496 0123}}.
Interviewer: How did the family take it?
P03: My mum and my sister {{PERSON:Fatima Zahra}} came every day. {{PERSON:Fatima}} brought food.
P04: Oh, {{PERSON:Bjorn Lindqvist}} was my key worker. {{PERSON:Bjorn}} is Swedish but he's lived in {{PLACE:Hull}} forever.
P04: He emailed me at {{EMAIL:p04.participant@example.net}} every week, and his number was {{PHONE:01632 960 123}}.
P04: I saw him last on {{DATE:2022-01-18}}. Then {{PERSON:Zsofia Horvath}} took over. {{PERSON:Zsofia}} was stricter.
P04: They moved me to the {{ORG:Lowfield Recovery House}} in {{PLACE:Doncaster}} in {{DATE:September 2022}}.
P05: I'm {{PERSON:Thandiwe}}. {{PERSON:Thandiwe Dlamini}}. I'm a peer support worker with {{ORG:Mindspring Bradford}}.
P05: I was diagnosed on {{DATE:12.05.2014}}, and I didn't tell anyone except {{PERSON:Kofi}}.
P05: {{PERSON:Kofi Mensah}} is my partner. We live in {{PLACE:Keighley}} now, {{POSTCODE:BD21 4QT}}.
P05: The letter said {{NHS_NUMBER:450-557-7104}}, which is my number, so that's how I knew it was mine.
P05: You could call the office on {{PHONE:(0113) 496 0777}}.
P06: My consultant was {{PERSON:Dr Nguyen Thi Lan}}. {{PERSON:Dr Nguyen}} was kind but busy.
P06: She referred me to {{PERSON:Jae-won Park}} for therapy. {{PERSON:Jae-won}} was amazing honestly.
P06: I had my first session on {{DATE:Tuesday 4th October}}, at the {{ORG:Calder Valley Clinic}}.
P06: I still have the card: {{EMAIL:jaewon.park.therapy@example.com}}.
P06: My flatmate {{PERSON:Aroha Ngata}} from {{PLACE:Auckland}} came along once.
P07: I work with {{PERSON:Guadalupe Ortiz}} and {{PERSON:Ayse Yilmaz}} on the outreach team.
P07: {{PERSON:Guadalupe}} does the {{PLACE:Harehills}} patch and {{PERSON:Ayse}} covers {{PLACE:Chapeltown}}.
P07: Our base is the {{ORG:Leeds Mind}} office, {{POSTCODE:LS7 3EX}}, phone {{PHONE:0113 496 0555}}.
P07: Last month {{PERSON:Malgorzata Wisniewska}} started. {{PERSON:Malgorzata}} is Polish and speaks four languages.
P07: We had a client, {{PERSON:Mr Eze}}, who was born on {{DATE:23/08/1961}}.
"""

HOLDOUT = """\
Interviewer: Can you tell me a bit about yourself?
P11: I'm {{PERSON:Chinwe}}, I work nights at {{ORG:Hallam Street Surgery}} in {{PLACE:Rotherham}}.
P11: My sister {{PERSON:Adaeze}} got me the job. {{PERSON:Adaeze Nwosu}} was a receptionist there for years.
P11: I started on {{DATE:1 February 2018}}. {{PERSON:Dr Kowalczyk}} interviewed me.
Interviewer: What was it like at first?
P11: Hard. {{PERSON:Ravi Subramanian}}, the practice manager, was very strict about rotas. {{PERSON:Ravi}} never smiled.
P11: You can reach me on {{PHONE:07700 900782}} or {{EMAIL:chinwe.n@example.org}}.
P12: When I was unwell my partner {{PERSON:Lukas}} called the crisis line. {{PERSON:Lukas Brandt}} is German.
P12: They took me to {{ORG:Fieldhead Hospital}} in {{PLACE:Wakefield}} on {{DATE:28/02/2020}}.
P12: The nurse, {{PERSON:Nurse Okoro}}, wrote my NHS number wrong, {{NHS_NUMBER:485 777 3456}}, on the form.
P12: {{PERSON:Mei Ling}} from the ward rang my mum on {{PHONE:01924 960 321}}.
P12: My mum lives in {{PLACE:Ossett}}, {{POSTCODE:WF5 8AB}}.
Interviewer: Mm. And after discharge?
P13: My care coordinator was {{PERSON:Seamus O'Donnell}}. {{PERSON:Seamus}} visited every week.
P13: I also saw {{PERSON:Dr Anjali Mehta}} at the {{ORG:Kirklees Memory Service}}.
P13: The appointment letter said {{DATE:Wednesday 16 March 2022}}, and my NHS number {{NHS_NUMBER:9434765870}}.
P13: My son {{PERSON:Yusuf}} came with me. {{PERSON:Yusuf}} drove from {{PLACE:Huddersfield}}.
P13: Afterwards I emailed {{EMAIL:care.team.kms@example.nhs.uk}} to complain.
P14: I'm a social worker. My colleague {{PERSON:Ewa Nowak}} and I cover {{PLACE:Batley}}.
P14: {{PERSON:Ewa}} is brilliant. She met a client, {{PERSON:Mrs Haddad}}, who was born on {{DATE:07-09-1948}}.
P14: {{PERSON:Mrs Haddad}} lived alone near {{PLACE:Dewsbury}} at {{POSTCODE:WF13 2RS}}.
P14: Her daughter {{PERSON:Leila}} phoned us from {{PLACE:Manchester}} on {{PHONE:+44 161 496 0234}}.
P14: We referred her to {{ORG:Age Concern Kirklees}} in {{DATE:April 2021}}.
P15: Honestly, {{PERSON:Tomasz}} saved my life. {{PERSON:Tomasz Zielinski}} was my neighbour.
P15: He found me on {{DATE:the 3rd of May}} and called an ambulance.
P15: I was in {{ORG:Pinderfields}} for a week. {{PERSON:Dr Abubakar}} was lovely.
P15: My CPN, {{PERSON:Grainne}}, gave me her work number, {{PHONE:01924 960 876}}.
P16: I run a group with {{PERSON:Hemi Walker}} and {{PERSON:Keanu}} at the {{ORG:Moorside Centre}}.
P16: {{PERSON:Hemi}} set it up after his brother died in {{PLACE:Halifax}}.
P16: People email us at {{EMAIL:moorside.group@example.co.uk}} or ring {{PHONE:07700 900 312}}.
P16: Our first meeting was on {{DATE:12th January 2019}}.
P17: I'm {{PERSON:Nadia}}. I've been with {{ORG:Bradford District Care Trust}} for six years.
P17: My supervisor {{PERSON:Hamza Qureshi}} is supportive. {{PERSON:Hamza}} listens.
P17: One patient, {{PERSON:Mr Petrov}}, had his NHS number {{NHS_NUMBER:401 023 2137}} written on his hand.
P17: He lived in {{PLACE:Shipley}} with his wife {{PERSON:Irina}}.
P18: I remember {{PERSON:Hope}} from the day centre. {{PERSON:Hope}} always made tea for everyone.
P18: And {{PERSON:Sunita Kaur}}, who ran the art class. {{PERSON:Sunita}} moved to {{PLACE:Leicester}} on {{DATE:30/06/2023}}.
P18: The centre closed in {{DATE:August 2023}}. It was at {{POSTCODE:HX1 5AB}}.
"""


@dataclass(frozen=True)
class Canary:
    type: str
    value: str
    turn: int  # index of the turn
    start: int  # offset in the turn's text
    end: int


def parse(block: str) -> tuple[list[tuple[str, str]], list[Canary]]:
    """(speaker, text) turns and the marked identifiers, offsets in the plain text."""
    turns: list[tuple[str, str]] = []
    canaries: list[Canary] = []
    for line in block.strip().split("\n"):
        speaker, _, marked = line.partition(": ")
        text, position = "", 0
        for match in MARK.finditer(marked):
            text += marked[position:match.start()]
            start = len(text)
            text += match.group("value")
            canaries.append(Canary(match.group("type"), match.group("value"), len(turns), start, len(text)))
            position = match.end()
        text += marked[position:]
        turns.append((speaker, text))
    return turns, canaries


def plain(block: str) -> str:
    """The transcript as a plain-text file (`SPEAKER: text` lines)."""
    turns, _ = parse(block)
    return "".join(f"{speaker}: {text}\n" for speaker, text in turns)

# Hard cases, reported (docs/privacy.md) but not held to the thresholds: lowercase
# speech-recognition output, names that are common words, sentence-initial names with no
# cue, spoken numbers and emails. Written before they were first scored; not tuned on.
STRESS = """\
P21: yeah so {{PERSON:kwame}} rang me after and said he'd been to see {{PERSON:dr mensah}} at the surgery.
P21: {{PERSON:Grace}} was there too, and {{PERSON:Will}} came later with {{PERSON:Rose}}.
P21: {{PERSON:Ikechukwu}} and I went back a long way, we trained together in {{PLACE:Enugu}}.
P22: {{PERSON:Faith}} runs the group now. {{PERSON:Xochitl}} helps her on Tuesdays.
P22: my number's {{PHONE:oh seven seven double oh nine double oh four six one}} if that helps.
P22: it's {{EMAIL:faith dot group at example dot org}}, all lower case.
P22: she was born on the {{DATE:twelfth of march nineteen sixty}}, so she's older than she looks.
P23: {{PERSON:Marguerite}} used to say it. {{PERSON:Szymon}} never did.
P23: we were living on {{PLACE:Cromwell Terrace}} back then, by the {{ORG:Co-op}}.
"""


@dataclass
class Score:
    total: dict[str, int]
    caught: dict[str, int]
    typed: dict[str, int]  # caught and given the right type
    detections: int
    false_positives: int
    misses: list[Canary]

    def recall(self, kind: str) -> float:
        return self.caught.get(kind, 0) / self.total[kind] if self.total.get(kind) else 1.0

    @property
    def precision(self) -> float:
        return 1 - self.false_positives / self.detections if self.detections else 1.0


TITLE_WORDS = {"dr", "doctor", "mr", "mrs", "ms", "miss", "nurse", "prof", "sister"}


def leaked(canary: Canary, output: str) -> bool:
    """Is any identifying part of `canary` still in `output`? Names: any name word (titles
    aside); other types: the value, or one of its digit groups of 3 or more."""
    if canary.type == "PERSON":
        needles = [w for w in canary.value.split() if w.casefold().strip(".") not in TITLE_WORDS]
    else:
        needles = [canary.value]
    groups = re.findall(r"\d{3,}", canary.value) if canary.type != "PERSON" else []
    return (any(re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", output) for n in needles)
            or any(re.search(r"(?<![\w.])" + g + r"(?!\w|\.\d)", output) for g in groups))  # not 0.476 in a number


def score(pseudonymiser, block: str) -> Score:  # type: ignore[no-untyped-def]
    """Run `pseudonymiser` over a canary block (one transcript) and score it."""
    from pipeline.pseudonymise import PREFIXES
    from pipeline.schema import Speaker, Transcript, Turn

    turns, canaries = parse(block)
    transcript = Transcript(
        transcript_id="canary", source_format="text", encoding="utf-8",
        speakers={s: Speaker(speaker_id=s, role="participant") for s, _ in turns},
        turns=tuple(Turn(turn_id=f"canary/t{i:04d}", index=i, speaker_id=s, text=t) for i, (s, t) in enumerate(turns)))
    out = pseudonymiser.pseudonymise(transcript).transcript
    detections = pseudonymiser.detect([t for _, t in turns], [s for s, _ in turns])
    total: dict[str, int] = {}
    caught: dict[str, int] = {}
    typed: dict[str, int] = {}
    misses = []
    for c in canaries:
        total[c.type] = total.get(c.type, 0) + 1
        if leaked(c, out.turns[c.turn].text):
            misses.append(c)
            continue
        caught[c.type] = caught.get(c.type, 0) + 1
        found = [d for d in detections[c.turn] if d.start < c.end and d.end > c.start]
        if found and all(d.type == c.type for d in found):
            typed[c.type] = typed.get(c.type, 0) + 1
    flat = [(i, d) for i, found in enumerate(detections) for d in found]
    false_positives = sum(1 for i, d in flat if not any(c.turn == i and d.start < c.end and d.end > c.start
                                                          for c in canaries))
    assert all(k in PREFIXES for k in total)
    return Score(total, caught, typed, len(flat), false_positives, misses)


def table(scores: dict[str, Score]) -> str:
    """A markdown table of recall per type and set (docs/privacy.md)."""
    kinds = ["PERSON", "PLACE", "ORG", "DATE", "PHONE", "EMAIL", "NHS_NUMBER", "POSTCODE"]
    lines = ["| type | " + " | ".join(scores) + " |", "|---|" + "---|" * len(scores)]
    for kind in kinds:
        cells = []
        for s in scores.values():
            n = s.total.get(kind, 0)
            cells.append(f"{s.caught.get(kind, 0)}/{n} = {s.recall(kind):.2f} (typed {s.typed.get(kind, 0)})"
                         if n else "–")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| precision of detections | " + " | ".join(
        f"{s.detections - s.false_positives}/{s.detections} = {s.precision:.2f}" for s in scores.values()) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.trust.canaries: the figures in docs/privacy.md
    from pipeline.pseudonymise import Pseudonymiser, PseudonymKey

    p = Pseudonymiser(PseudonymKey.create())
    print(table({"dev": score(p, DEV), "holdout": score(p, HOLDOUT), "stress": score(p, STRESS)}))
