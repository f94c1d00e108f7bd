"""OCR repair on real fragments of the seed pages."""

from rag.repair import clean_inline, has_editor_code, normalize_width, squeeze_spaces, strip_editor_code, undouble, unwrap, visible_len


def test_joins_words_broken_across_lines_and_blank_lines():
    paragraphs, captions = unwrap(["王文峰一行督导调研重点项", "", "目建设工作。区领导于杰参加活动。"])
    assert paragraphs == ["王文峰一行督导调研重点项目建设工作。区领导于杰参加活动。"]
    assert captions == []


def test_removes_spaces_between_cjk_and_around_digits_but_keeps_latin_spaces():
    assert squeeze_spaces("逢春可复苏，天道酬勤铸不凡。 2 月 20 日，开发区") == "逢春可复苏，天道酬勤铸不凡。2月20日，开发区"
    assert squeeze_spaces("新增 LED 电子屏") == "新增LED电子屏"
    assert squeeze_spaces("the Zhoukou Daily  news") == "the Zhoukou Daily news"


def test_whitespace_of_every_kind_counts_as_whitespace():
    assert squeeze_spaces("\n没有空格的段落。\u3000\n") == "没有空格的段落。"  # no space or tab: only stripped
    assert visible_len(" 周口\t市\u3000开发区\u2028\n") == 6
    assert clean_inline("  周口\n日报 \u00a0 头版 ") == "周口 日报 头版"


def test_numbers_split_by_ocr_spacing_are_joined_inside_cjk_text_only():
    assert squeeze_spaces("教堂于 198 9年被列入名录") == "教堂于1989年被列入名录"
    assert squeeze_spaces("共 3 500 人参加，增长 1 2%。") == "共3500人参加，增长12%。"
    assert squeeze_spaces("Windows 7 10 and 11") == "Windows 7 10 and 11"


def test_normalises_full_width_letters_and_digits_only():
    assert normalize_width("ＬＥＤ屏２０２３年，（好）") == "LED屏2023年，（好）"
    assert normalize_width("ｗｗｗ．ａ\u3000Ｚ\u00a0ｚ\r\n０\r９") == "www．a Z z\n0\n9"  # every range's ends
    assert normalize_width("没有全角字符。\n") == "没有全角字符。\n"


def test_drops_editor_codes_at_article_end():
    assert strip_editor_code("认真做好评选工作。②7") == "认真做好评选工作。"
    assert strip_editor_code("评选工作。 \u2473123 \n") == "评选工作。"  # the last mark, three digits, whitespace after
    assert strip_editor_code("评选工作。❿1234") == "评选工作。❿1234"  # four digits: no editor code
    assert strip_editor_code("②号楼已经完工。") == "②号楼已经完工。"  # a circled number inside the text stays
    assert has_editor_code("工作。❶ ") and not has_editor_code("工作。") and not has_editor_code("❶号楼")
    paragraphs, _ = unwrap(["会议还研究了待拆迁居委会的“创卫”工作。②7"])
    assert paragraphs == ["会议还研究了待拆迁居委会的“创卫”工作。"]


def test_undoubles_bold_caption_text():
    line = "88 月 2266日，，太昊路办事处许寨社区文艺队宣传““创文””知识。。"
    assert squeeze_spaces(undouble(line)) == "8月26日，太昊路办事处许寨社区文艺队宣传“创文”知识。"
    assert undouble("增加车位 420 个") == "增加车位 420 个"  # untouched without doubled punctuation


def test_keeps_real_paragraph_breaks_in_narrow_columns():
    lines = [
        "领导干部要牢固树立抓项目就是抓",
        "发展的意识，全力确保项目建设取",
        "得实效。",
        "企业要大干快上，采取得力措施，调",
        "动优质资源，高质高效推进建设。",
    ]
    paragraphs, _ = unwrap(lines)
    assert paragraphs == [
        "领导干部要牢固树立抓项目就是抓发展的意识，全力确保项目建设取得实效。",
        "企业要大干快上，采取得力措施，调动优质资源，高质高效推进建设。",
    ]


def test_caption_inside_a_sentence_is_lifted_out():
    long = "罗庄社区工作人员向前来办理业务的居民发放宣传单，并仔细讲解最"
    lines = [long * 3, "", "", "志愿者向居民发放宣传单", "", "新防疫政策。" + long * 2 + "。"]
    paragraphs, captions = unwrap(lines)
    assert captions == ["志愿者向居民发放宣传单"]
    assert paragraphs[0].startswith(long * 3 + "新防疫政策。")


def test_numbers_wrapped_across_lines_join_without_a_space():
    paragraphs, _ = unwrap(["截至目前，值班值守到岗率10", "0%，业务办理满意率100%。"])
    assert paragraphs == ["截至目前，值班值守到岗率100%，业务办理满意率100%。"]
    paragraphs, _ = unwrap(["Reported by the Zhoukou", "Daily on Monday."])
    assert paragraphs == ["Reported by the Zhoukou Daily on Monday."]


def test_table_rows_are_paragraphs_of_their_own():
    lines = ["项目进展如下：", "| 项目 | 进度 |", "| 领尚科技 | 主体完工 |", "其余项目正在推进。"]
    paragraphs, captions = unwrap(lines)
    assert paragraphs == ["项目进展如下：", "| 项目 | 进度 |", "| 领尚科技 | 主体完工 |", "其余项目正在推进。"]
    assert captions == []
