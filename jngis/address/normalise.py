"""Normalising Chinese address text before it is parsed.

One function, :func:`normalise`, turns what a caller or a hotline export
writes into one canonical spelling: full-width characters become half-width
(NFKC), spaces and punctuation go, Chinese numerals before a number word
(号, 号楼, 栋, 单元, 室, 层) become digits through cn2an, the many words for a
building (栋, 幢, 座, 号楼) become ``号楼``, a courtyard ``号院`` becomes the
door number ``号``, ``3-2-302`` becomes ``3号楼2单元302室``, and trailing words
that locate the caller near the address (附近, 门口, 对面 ...) are dropped.

Numerals inside names are left alone on purpose: 经十路 and 二环东路 are road
names, not numbers.

Examples
--------
>>> normalise("历下区文化东路六十八号院 山大新村三栋二单元")
'历下区文化东路68号山大新村3号楼2单元'
>>> normalise("经十路１２３号３－２－３０２")
'经十路123号3号楼2单元302室'
>>> normalise("纬二路5号楼门口")
'纬二路5号楼'
"""

from __future__ import annotations

import functools
import re
import unicodedata

import cn2an

__all__ = ["normalise", "numeral_to_int", "PROVINCES"]

_NUMERAL_CHARS = "零〇一二两三四五六七八九十百千"
_DIGIT_OF = dict(zip("零〇一二两三四五六七八九", "001223456789"))

# A run of Chinese numerals directly before a number word is a number.
_NUMERAL_BEFORE_WORD = re.compile(rf"([{_NUMERAL_CHARS}]+)(?=号|栋|幢|座|单元|室|层|楼)")
_BUILDING_WORD = re.compile(r"(\d+)(?:号楼|号栋|号幢|栋|幢|座|楼)")
_COURTYARD = re.compile(r"(\d+)号院")
_DASHED = re.compile(r"(\d+)-(\d+)-(\d+)$")
_DASHED_TWO = re.compile(r"(\d+)号楼?-(\d+)$")
_DROP = re.compile(r"[\s,，。.、;；:：·'\"“”‘’()（）\[\]【】<>《》#＃]+")
_DASH = re.compile(r"[－—–~～_]+")
_NEAR = re.compile(r"(?:附近|门口|对面|旁边|楼下|路口|东侧|西侧|南侧|北侧|一带)+$")
_NEAR_LAST = set("近口面边下侧带")

#: Province-level names (short forms): an address starting with one of them that
#: is not the index's own prefix lies outside the city.
PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "江苏", "浙江",
    "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "四川", "贵州",
    "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆", "香港", "澳门", "台湾",
)


@functools.lru_cache(maxsize=4096)
def numeral_to_int(text: str) -> int:
    """The integer a run of Chinese numerals writes (三百零五 -> 305, 三零二 -> 302).

    Examples
    --------
    >>> numeral_to_int("六十八"), numeral_to_int("三零二"), numeral_to_int("两")
    (68, 302, 2)
    """
    if not any(c in "十百千" for c in text):  # digit by digit: 三零二
        return int("".join(_DIGIT_OF[c] for c in text))
    return int(cn2an.cn2an(text.replace("〇", "零"), "smart"))


def _numeral(match: re.Match[str]) -> str:
    try:
        return str(numeral_to_int(match.group(1)))
    except (ValueError, KeyError):  # cn2an refuses malformed runs such as 十十: keep the text
        return match.group(1)


@functools.lru_cache(maxsize=65536)
def normalise(text: str) -> str:
    """The canonical spelling of an address (see the module docstring)."""
    out = unicodedata.normalize("NFKC", text)
    out = _DASH.sub("-", _DROP.sub("", out))
    if out[-1:] in _NEAR_LAST:  # each pattern runs only where its characters occur
        out = _NEAR.sub("", out)
    if any(c in out for c in _NUMERAL_CHARS):
        out = _NUMERAL_BEFORE_WORD.sub(_numeral, out)
    if "-" in out:
        out = _DASHED.sub(r"\1号楼\2单元\3室", out)
        out = _DASHED_TWO.sub(r"\1号楼\2单元", out)
    if "院" in out:
        out = _COURTYARD.sub(r"\1号", out)
    if any(c in out for c in "栋幢座楼"):
        out = _BUILDING_WORD.sub(r"\1号楼", out)
    return out.replace("-", "")
