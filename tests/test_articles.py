"""Article splitting on the real seed pages: headlines read off the pages by hand."""

from rag.articles import article_key, split_articles
from rag.ingest import Document, read_documents


def _articles(seeds_dir, name):
    doc = next(d for d in read_documents(seeds_dir) if d.source == name)
    return split_articles(doc)


def test_headlines_page_000(seeds_dir):
    titles = [a.title for a in _articles(seeds_dir, "000_511f53cd465d0282.txt")]
    assert titles == [
        "全力以赴确保项目早日投产达效",
        "查漏补缺助力“创文”“创卫”工作提质增效",
        "着眼“三个重点” 劲吹文明新风",
        "社区秧歌队为居民幸福“加码”",
        "太昊路办事处开展“创文”“创卫”挑战赛",
        "精准监督守护就业“铁饭碗”",
        "起好步开好局 作风建设不停歇",
        "国家安全宣传进社区",
        "许寨社区成功创建“五星”支部",
    ]


def test_headlines_page_003_with_column_name_and_commentary(seeds_dir):
    articles = _articles(seeds_dir, "003_dbd476b8f86f7364.txt")
    assert [a.title for a in articles] == [
        "开发区召开“卫生家庭”“‘创卫’示范街”评选工作会议",
        "王文峰带队督导背街小巷整治工作",
        "刘涛调研“创卫”等工作",
        "开发区召开“创卫”工作推进会",
        "“创卫”激活新动力",
        "开发区召开中层干部会议",
        "开发区强力推进“创卫”专项整治",
        "市自然资源和规划局到开发区对接规划编制工作",
        "开发区加强窗口单位以案促改警示教育",
    ]
    commentary = articles[4]
    assert commentary.kicker == "今日论坛" and commentary.byline == "李清华"
    assert all("②7" not in a.body and "摄" not in a.body.splitlines()[-1][-2:] for a in articles)


def test_markdown_page_headings_kickers_and_bylines(seeds_dir):
    articles = _articles(seeds_dir, "002_d930b353b5af356e.txt")
    assert [a.title for a in articles][:4] == [
        "示范区:真抓实干求突破 全力以赴谋发展",
        "做实以案促改工作 一体推进“三不腐”",
        "打通基层执纪监督“最后一公里”",
        "多渠道宣传 力促“新十条”落地见效",
    ]
    assert articles[0].byline == "记者 姬慧洋 通讯员 王明杰"
    assert articles[3].kicker == "文昌办事处"
    assert "提能力强组织 画好“同心圆”" in articles[0].body  # sub-heads stay in the body


def test_bylines_and_clean_bodies(seeds_dir):
    first = _articles(seeds_dir, "000_511f53cd465d0282.txt")[0]
    assert first.byline == "本报讯（记者 王晨 文/图）"
    assert first.body.startswith("万物逢春可复苏，天道酬勤铸不凡。2月20日，开发区党委书记王文峰")
    second = _articles(seeds_dir, "000_511f53cd465d0282.txt")[1]
    assert second.byline == "本报讯（记者王晨通讯员曹文娟）"


def test_captions_and_credit_lines_never_become_headlines(seeds_dir):
    titles = {a.title for d in read_documents(seeds_dir) for a in split_articles(d)}
    for stray in ("正在建设中的领尚科技现代化厂房", "今日论坛", "记者 王晨 摄", "志愿者向居民发放宣传单", "图一", "表彰现场"):
        assert stray not in titles
    assert not any(t.endswith("摄") for t in titles)


def test_page_without_bylines_is_one_article_titled_by_first_line():
    doc = Document("wiki.txt", "泡泡战士\n基于《跑跑卡丁车》开发的游戏。玩家以水枪泡封敌人。\n", "x")
    [article] = split_articles(doc)
    assert article.title == "泡泡战士"
    assert article.body == "基于《跑跑卡丁车》开发的游戏。玩家以水枪泡封敌人。"


def test_a_table_row_is_never_a_headline():
    from rag.articles import is_headline_like

    assert not is_headline_like("| 项目 | 进度 |")
    doc = Document("t.docx", "项目表\n| 领尚科技 | 主体完工 |\n本报讯（记者 王晨）正文。\n", "x")
    articles = split_articles(doc)
    assert all("|" not in a.title for a in articles)
    assert "| 领尚科技 | 主体完工 |" in articles[0].body


def test_an_articles_key_ignores_whitespace_of_every_kind():
    """Keys are stored (segments, the near-duplicate index, Milvus ids): the same text laid out differently
    has the same key, and the key of a text is what it always was."""
    import xxhash

    assert article_key("周口\u3000市\n新闻 \u00a0\u2028报\t") == article_key("周口市新闻报") == xxhash.xxh3_64_intdigest("周口市新闻报".encode())
    assert article_key("周口市新闻报") != article_key("周口市新闻")
