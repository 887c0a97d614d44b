"""The demo hall's data: hall, categories, windows, staff, pause and rating reasons, 823 matters.

Pure data and pure functions (no database): the reference server seeds its demo hall from
`build_demo_hall()`, tests and benchmarks use it directly. The scenario is a district
"high-tech zone" hall in Shandong that put all 823 district-level matters into one window
(see /work/shared/design/DOMAIN.md). About sixty matters are written by hand from real service
guides (办事指南); the rest are derived from them deterministically (other entity types,
industries and actions: 变更/延续/注销/补证 ...) so the catalogue has a realistic size and shape.
`avatar_png()` draws the staff photos the evaluator pad shows.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MATTER_COUNT = 823
REGION_CODE = "370191"

# Why a path and not fontconfig at runtime: the server may run without fc-match; this is where
# Debian's fonts-wqy-microhei puts it. Others are tried in order so another CJK font also works.
CJK_FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)


@dataclass(frozen=True)
class DemoHall:
    """Everything the demo hall is seeded with. Plain dicts/lists, shaped like the Hall API."""

    hall: dict[str, Any]
    categories: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    staff: list[dict[str, Any]]
    pause_reasons: list[dict[str, Any]]
    rating_reasons: dict[str, Any]
    matters: list[dict[str, Any]]


# --------------------------------------------------------------------------------------------
# Hall structure
# --------------------------------------------------------------------------------------------

HALL: dict[str, str] = {"code": "GXQ", "name_zh": "高新区政务服务大厅", "name_en": "High-tech Zone Government Service Hall"}

CATEGORIES: list[dict[str, str]] = [
    {"code": "A", "name_zh": "市场主体登记", "name_en": "Business registration"},
    {"code": "B", "name_zh": "许可审批（食品、药品、卫生、文化）", "name_en": "Licences and permits (food, drugs, health, culture)"},
    {"code": "C", "name_zh": "工程建设", "name_en": "Construction projects"},
    {"code": "D", "name_zh": "社会事务（社保、医保、民政、户籍）", "name_en": "Social affairs (social security, medical insurance, civil affairs, residence)"},
    {"code": "E", "name_zh": "不动产登记", "name_en": "Real estate registration"},
    {"code": "F", "name_zh": "税务", "name_en": "Taxation"},
    {"code": "G", "name_zh": "综合受理·跨省通办", "name_en": "General intake and cross-province services"},
]

WINDOWS: list[dict[str, Any]] = [
    {"no": 1, "name_zh": "1号窗口 市场主体登记", "name_en": "Window 1 Business registration", "categories": ["A"]},
    {"no": 2, "name_zh": "2号窗口 市场主体登记", "name_en": "Window 2 Business registration", "categories": ["A"]},
    {"no": 3, "name_zh": "3号窗口 市场主体登记", "name_en": "Window 3 Business registration", "categories": ["A"]},
    {"no": 4, "name_zh": "4号窗口 食品药品许可", "name_en": "Window 4 Food and drug licences", "categories": ["B"]},
    {"no": 5, "name_zh": "5号窗口 卫生文化许可", "name_en": "Window 5 Health and culture permits", "categories": ["B"]},
    {"no": 6, "name_zh": "6号窗口 工程建设", "name_en": "Window 6 Construction projects", "categories": ["C"]},
    {"no": 7, "name_zh": "7号窗口 社保医保", "name_en": "Window 7 Social and medical insurance", "categories": ["D"]},
    {"no": 8, "name_zh": "8号窗口 民政户籍", "name_en": "Window 8 Civil affairs and residence", "categories": ["D"]},
    {"no": 9, "name_zh": "9号窗口 不动产登记", "name_en": "Window 9 Real estate registration", "categories": ["E"]},
    {"no": 10, "name_zh": "10号窗口 税务", "name_en": "Window 10 Taxation", "categories": ["F"]},
    {"no": 11, "name_zh": "11号窗口 综合受理", "name_en": "Window 11 General intake", "categories": ["G", "A", "D"]},
    {"no": 12, "name_zh": "12号窗口 跨省通办", "name_en": "Window 12 Cross-province services", "categories": ["G", "D", "E", "F"]},
    {"no": 13, "name_zh": "13号窗口 绿色通道（老年人、残疾人）", "name_en": "Window 13 Green channel (elderly and disabled)", "categories": ["A", "B", "C", "D", "E", "F", "G"]},
]

# (staff_no, name_zh, name_en, role, window_no)
_STAFF_ROWS: list[tuple[str, str, str, str, int | None]] = [
    ("1001", "王丽娜", "Wang Lina", "staff", 1),
    ("1002", "李建国", "Li Jianguo", "staff", 2),
    ("1003", "张晓燕", "Zhang Xiaoyan", "staff", 3),
    ("1004", "刘洋", "Liu Yang", "staff", 4),
    ("1005", "陈静", "Chen Jing", "staff", 5),
    ("1006", "杨帆", "Yang Fan", "staff", 6),
    ("1007", "赵敏", "Zhao Min", "staff", 7),
    ("1008", "黄磊", "Huang Lei", "staff", 8),
    ("1009", "周婷", "Zhou Ting", "staff", 9),
    ("1010", "吴昊", "Wu Hao", "staff", 10),
    ("1011", "徐丹", "Xu Dan", "staff", 11),
    ("1012", "孙志强", "Sun Zhiqiang", "staff", 12),
    ("1013", "马慧", "Ma Hui", "staff", 13),
    ("1014", "朱峰", "Zhu Feng", "staff", None),
    ("1015", "胡雪", "Hu Xue", "staff", None),
    ("1016", "郭鹏", "Guo Peng", "staff", None),
    ("8001", "高文华", "Gao Wenhua", "supervisor", None),
    ("9001", "林涛", "Lin Tao", "it_admin", None),
]

STAFF: list[dict[str, Any]] = [
    {"staff_no": no, "name_zh": zh, "name_en": en, "role": role, "window_no": win}
    for no, zh, en, role, win in _STAFF_ROWS
]

PAUSE_REASONS: list[dict[str, str]] = [
    {"code": "break", "name_zh": "暂时休息", "name_en": "Short break",
     "public_zh": "窗口暂停服务，请稍候", "public_en": "This window is paused, please wait a moment"},
    {"code": "meal", "name_zh": "就餐", "name_en": "Meal break",
     "public_zh": "窗口暂停服务，请稍候或前往其他窗口", "public_en": "This window is paused; please wait or go to another window"},
    {"code": "meeting", "name_zh": "会议", "name_en": "Meeting",
     "public_zh": "窗口暂停服务，请稍候", "public_en": "This window is paused, please wait a moment"},
    {"code": "system_fault", "name_zh": "系统故障", "name_en": "System fault",
     "public_zh": "系统维护中，暂停服务，请稍候", "public_en": "System maintenance, service paused, please wait"},
    {"code": "training", "name_zh": "业务培训", "name_en": "Training",
     "public_zh": "窗口暂停服务，请前往其他窗口办理", "public_en": "This window is paused, please go to another window"},
    {"code": "fetch_materials", "name_zh": "调取材料", "name_en": "Fetching materials",
     "public_zh": "工作人员正在调取材料，请稍候", "public_en": "Staff are fetching materials, please wait a moment"},
    {"code": "consultation", "name_zh": "后台会商", "name_en": "Consulting back office",
     "public_zh": "工作人员正在会商办理，请稍候", "public_en": "Staff are consulting the back office, please wait"},
    {"code": "field_service", "name_zh": "帮办代办外出", "name_en": "Out on assisted service",
     "public_zh": "工作人员外出帮办，暂停服务", "public_en": "Staff are out assisting a citizen, service paused"},
]

# The national reason list for bad ratings, in the spirit of GB/T 39734-2020 annex A (its
# categories: guidance, process, materials, time, attitude, integrity, system). Served from the
# server and never hard-coded in clients.
RATING_REASONS: dict[str, Any] = {
    "version": "GB/T 39734-2020 附录A",
    "reasons": [
        {"code": "A01", "text_zh": "办事指南不准确、不清晰", "text_en": "The service guide was inaccurate or unclear"},
        {"code": "A02", "text_zh": "未一次性告知所需材料", "text_en": "Not told all required materials at once"},
        {"code": "A03", "text_zh": "要求提供不必要的材料或证明", "text_en": "Asked for unnecessary materials or certificates"},
        {"code": "A04", "text_zh": "多次跑腿、重复提交材料", "text_en": "Had to come several times or resubmit materials"},
        {"code": "A05", "text_zh": "等候时间过长", "text_en": "Waited too long"},
        {"code": "A06", "text_zh": "办理时间过长、超时办结", "text_en": "Handling took too long or missed the promised time limit"},
        {"code": "A07", "text_zh": "服务态度差、推诿扯皮", "text_en": "Poor attitude or passing the buck"},
        {"code": "A08", "text_zh": "业务不熟练、解答不专业", "text_en": "Staff not familiar with the matter, unprofessional answers"},
        {"code": "A09", "text_zh": "办理流程繁琐、环节多", "text_en": "Cumbersome process with too many steps"},
        {"code": "A10", "text_zh": "不按规定受理或不予受理", "text_en": "Application refused or not accepted as the rules require"},
        {"code": "A11", "text_zh": "违规收费或索要财物", "text_en": "Irregular fees or demands for gifts"},
        {"code": "A12", "text_zh": "系统故障、网络不稳定", "text_en": "System fault or unstable network"},
        {"code": "A13", "text_zh": "办事场所环境、设施不便利", "text_en": "Inconvenient premises or facilities"},
        {"code": "A14", "text_zh": "其他", "text_en": "Other"},
    ],
}


# --------------------------------------------------------------------------------------------
# Departments and the material library
# --------------------------------------------------------------------------------------------

DEPARTMENTS: dict[str, tuple[str, str]] = {
    "approval": ("高新区行政审批服务局", "High-tech Zone Administrative Approval Services Bureau"),
    "market": ("高新区市场监督管理局", "High-tech Zone Market Supervision Administration"),
    "health": ("高新区卫生健康局", "High-tech Zone Health Commission"),
    "culture": ("高新区文化和旅游局", "High-tech Zone Culture and Tourism Bureau"),
    "transport": ("高新区交通运输局", "High-tech Zone Transport Bureau"),
    "agri": ("高新区农业农村局", "High-tech Zone Agriculture and Rural Affairs Bureau"),
    "construction": ("高新区住房和城乡建设局", "High-tech Zone Housing and Urban-Rural Development Bureau"),
    "planning": ("高新区自然资源和规划局", "High-tech Zone Natural Resources and Planning Bureau"),
    "urban": ("高新区城市管理局", "High-tech Zone Urban Management Bureau"),
    "hrss": ("高新区人力资源和社会保障局", "High-tech Zone Human Resources and Social Security Bureau"),
    "medins": ("高新区医疗保障局", "High-tech Zone Healthcare Security Bureau"),
    "civil": ("高新区民政局", "High-tech Zone Civil Affairs Bureau"),
    "disabled": ("高新区残疾人联合会", "High-tech Zone Disabled Persons' Federation"),
    "police": ("公安局高新区分局", "High-tech Zone Public Security Sub-bureau"),
    "realestate": ("高新区不动产登记中心", "High-tech Zone Real Estate Registration Centre"),
    "tax": ("国家税务总局高新区税务局", "High-tech Zone Tax Bureau, State Taxation Administration"),
    "fund": ("住房公积金管理中心高新区管理部", "Housing Provident Fund Centre, High-tech Zone Office"),
    "education": ("高新区教育和体育局", "High-tech Zone Education and Sports Bureau"),
    "emergency": ("高新区应急管理局", "High-tech Zone Emergency Management Bureau"),
}

# key: (name_zh, name_en, copies, original_required, e_licence, notes_zh, notes_en)
_M = tuple[str, str, int, bool, bool, str, str]
MATERIALS: dict[str, _M] = {
    "id_card": ("申请人居民身份证", "Applicant's resident identity card", 1, True, True,
                "原件核验，可出示电子身份证免交复印件", "Original checked; an electronic ID card replaces the photocopy"),
    "agent_id": ("代理人居民身份证", "Agent's resident identity card", 1, True, True,
                 "委托他人办理时提供", "Only when an agent applies"),
    "poa": ("授权委托书", "Power of attorney", 1, True, False,
            "委托他人办理时提供，须申请人签字（盖章）", "Only when an agent applies; signed (or sealed) by the applicant"),
    "biz_licence": ("营业执照", "Business licence", 1, True, True,
                    "可通过电子营业执照调取，免于提交", "Fetched from the electronic business licence; no need to submit"),
    "premises": ("经营场所使用证明（房产证或租赁合同）", "Proof of use of the premises (property certificate or lease)", 1, False, False,
                 "自有房产提供不动产权证书，租赁的提供租赁合同", "Property certificate if owned, lease contract if rented"),
    "health_cert": ("从业人员健康证明", "Health certificates of staff", 1, False, False,
                    "直接接触入口食品的从业人员须持有效健康证明", "Required for every staff member handling ready-to-eat food"),
    "household": ("居民户口簿", "Household register (hukou booklet)", 1, True, True,
                  "可通过电子证照库核验", "Checked through the e-licence database"),
    "marriage": ("结婚证", "Marriage certificate", 1, True, True, "", ""),
    "property_cert": ("不动产权证书（或房屋所有权证、土地使用权证）", "Real estate title certificate (or house/land title)", 1, True, True,
                      "可通过电子证照库调取", "Fetched from the e-licence database"),
    "photo": ("近期免冠彩色照片", "Recent bareheaded colour photos", 2, False, False,
              "一寸白底，也可现场免费拍摄", "1-inch, white background; can be taken free of charge on site"),
    "bank_card": ("社会保障卡或本人银行卡", "Social security card or own bank card", 1, True, False,
                  "用于待遇发放", "For paying the benefit"),
    "ssc": ("社会保障卡", "Social security card", 1, True, True,
            "可出示电子社保卡", "An electronic social security card may be shown"),
    "articles": ("公司章程", "Articles of association", 1, True, False,
                 "全体股东签署", "Signed by all shareholders"),
    "shareholders": ("股东主体资格证明或自然人身份证明", "Shareholders' certificates of legal status or ID cards", 1, False, True, "", ""),
    "officers": ("法定代表人、董事、监事和经理的任职文件及身份证明", "Appointment documents and IDs of the legal representative, directors, supervisors and manager", 1, False, False, "", ""),
    "name_notice": ("企业名称自主申报告知书", "Enterprise name self-declaration notice", 1, False, False,
                    "网上自主申报后打印或现场查询", "Printed after the online name declaration, or checked on site"),
    "resolution": ("股东会决议或股东决定", "Shareholders' resolution or decision", 1, True, False, "", ""),
    "layout": ("经营场所平面布局图", "Floor plan of the premises", 1, False, False,
               "标明功能区域、设备位置", "Marking the functional areas and equipment"),
    "process_flow": ("主要设备设施布局、操作流程文件", "Equipment layout and process flow documents", 1, False, False, "", ""),
    "food_rules": ("食品安全管理制度", "Food safety management rules", 1, False, False,
                   "可使用市场监管部门提供的示范文本", "The model text from market supervision may be used"),
    "food_manager": ("食品安全管理人员及专业技术人员名单", "List of food safety managers and technical staff", 1, False, False, "", ""),
    "hygiene_report": ("卫生检测（评价）报告", "Hygiene testing (evaluation) report", 1, True, False,
                       "具有资质的检测机构出具", "Issued by a qualified testing body"),
    "hygiene_rules": ("卫生管理制度", "Hygiene management rules", 1, False, False, "", ""),
    "pharmacist": ("执业药师注册证", "Licensed pharmacist registration certificate", 1, True, True, "", ""),
    "drug_rules": ("药品质量管理制度及岗位职责", "Drug quality management rules and job duties", 1, False, False, "", ""),
    "fire_ok": ("消防安全检查合格证明或承诺书", "Fire safety inspection certificate or commitment letter", 1, False, False,
                "实行告知承诺的可提交承诺书", "A commitment letter where the notice-and-commitment scheme applies"),
    "land_cert": ("建设用地批准文件或不动产权证书", "Land use approval or real estate title", 1, False, True, "", ""),
    "planning_permit": ("建设工程规划许可证", "Construction project planning permit", 1, False, True, "", ""),
    "contract_award": ("施工合同及中标通知书", "Construction contract and notice of award", 1, False, False,
                       "依法不需招标的提供直接发包备案材料", "Direct award filing where no tender is required"),
    "quality_commit": ("建设单位质量安全承诺书", "Developer's quality and safety commitment", 1, True, False, "", ""),
    "funding_proof": ("建设资金已经落实承诺书", "Commitment that construction funds are in place", 1, True, False, "", ""),
    "drawings": ("施工图设计文件审查合格意见", "Approved construction drawing review opinion", 1, False, False,
                 "联网审查的免于提交", "Not needed when reviewed online"),
    "transport_contract": ("建筑垃圾运输合同", "Construction waste transport contract", 1, False, False, "", ""),
    "disposal_site": ("消纳场所证明", "Proof of the disposal site", 1, False, False, "", ""),
    "ad_design": ("广告设置效果图及设计图", "Rendering and design drawings of the advertisement", 1, False, False, "", ""),
    "structure_safety": ("结构安全鉴定报告", "Structural safety assessment", 1, False, False,
                         "大型户外广告设施提供", "For large outdoor advertising structures"),
    "dog_vaccine": ("犬只狂犬病免疫证明", "Rabies vaccination certificate of the dog", 1, True, False,
                    "由动物诊疗机构出具", "Issued by a veterinary clinic"),
    "dog_photo": ("犬只正面、侧面照片", "Front and side photos of the dog", 1, False, False, "", ""),
    "residence_proof": ("合法稳定住所证明（房产证、租赁合同或单位住宿证明）", "Proof of a lawful, stable residence (title, lease or employer housing)", 1, False, False, "", ""),
    "work_proof": ("合法稳定就业证明（劳动合同或营业执照）或连续就读证明", "Proof of stable employment (labour contract or licence) or of study", 1, False, False, "", ""),
    "birth_cert": ("出生医学证明", "Medical birth certificate", 1, True, True, "", ""),
    "disability_cert": ("残疾人证", "Disability certificate", 1, True, True,
                        "第二代智能化残疾人证可电子核验", "The second-generation card is checked electronically"),
    "medical_record": ("医院诊断证明及病历资料", "Hospital diagnosis and medical records", 1, True, False, "", ""),
    "income_proof": ("家庭成员收入证明", "Income statements of family members", 1, False, False,
                     "无固定收入的由本人书面承诺", "Written statement by the applicant if there is no fixed income"),
    "asset_auth": ("家庭经济状况核对授权书", "Authorisation to check family financial status", 1, True, False,
                   "共同生活的家庭成员均须签字", "Signed by all family members living together"),
    "labour_contract": ("劳动合同", "Labour contract", 1, False, False, "", ""),
    "separation_proof": ("解除或终止劳动合同证明", "Certificate of termination of employment", 1, True, False, "", ""),
    "sale_contract": ("不动产买卖合同", "Real estate sale contract", 1, True, False,
                      "网签合同可直接调取", "An online-signed contract is fetched directly"),
    "tax_paid": ("完税或减免税凭证", "Tax payment or exemption receipt", 1, False, True,
                 "税务部门推送的免于提交", "Not needed when pushed by the tax bureau"),
    "survey": ("不动产权籍调查成果", "Cadastral survey results", 1, False, False, "", ""),
    "mortgage_contract": ("抵押合同及主债权合同", "Mortgage contract and principal loan contract", 1, True, False, "", ""),
    "creditor_id": ("抵押权人营业执照或金融许可证", "Mortgagee's business or financial licence", 1, False, True, "", ""),
    "seal": ("企业公章", "Company seal", 1, True, False, "", ""),
    "finance_staff": ("财务负责人、办税人员身份证明", "IDs of the finance officer and tax officer", 1, True, True, "", ""),
    "invoice_book": ("发票领用簿或税务UKey", "Invoice purchase booklet or tax UKey", 1, True, False, "", ""),
    "income_docs": ("收入、扣除相关资料（工资薪金、专项附加扣除凭证等）", "Income and deduction documents (payslips, special deduction proofs)", 1, False, False, "", ""),
    "fund_card": ("住房公积金联名卡", "Housing provident fund co-branded bank card", 1, True, False, "", ""),
    "house_purchase": ("购房合同及购房发票", "House purchase contract and invoice", 1, True, False, "", ""),
    "rent_proof": ("无房证明或租赁备案证明", "Certificate of owning no home or lease registration", 1, False, True, "", ""),
    "application": ("申请书", "Application form", 1, True, False,
                    "可在大厅领取或网上下载，现场可免费代填", "Available in the hall or online; staff can fill it in for you"),
    "commitment": ("告知承诺书", "Notice-and-commitment letter", 1, True, False,
                   "申请人承诺符合条件的，可当场审批", "Approved on the spot once the applicant commits to meeting the conditions"),
    "old_cert": ("原证照正、副本", "Original certificate (original and duplicate)", 1, True, False,
                 "已遗失的提交遗失声明", "If lost, a declaration of loss instead"),
    "loss_notice": ("遗失声明", "Declaration of loss", 1, True, False,
                    "在国家企业信用信息公示系统或报刊发布", "Published on the national enterprise credit system or in a newspaper"),
    "change_proof": ("变更事项相关证明材料", "Supporting documents for the change", 1, False, False, "", ""),
    "clearance": ("清税证明", "Tax clearance certificate", 1, False, True,
                  "税务部门推送的免于提交", "Not needed when pushed by the tax bureau"),
    "liquidation": ("清算报告", "Liquidation report", 1, True, False, "", ""),
    "hospital_bill": ("医疗费用票据及费用明细清单", "Medical bills and itemised expense list", 1, True, False, "", ""),
    "transfer_cert": ("参保缴费凭证或转移接续联系函", "Contribution record or transfer liaison letter", 1, False, True,
                      "可通过全国社保转移平台线上传递", "Transmitted online through the national transfer platform"),
    "transfer_permit": ("准予迁入证明", "Permit to move in (household registration)", 1, True, True,
                        "跨省通办的通过电子迁移信息流转", "Passed electronically for cross-province moves"),
    "equipment_list": ("主要设施设备清单", "List of main facilities and equipment", 1, False, False, "", ""),
    "staff_qual": ("专业技术人员资格证明", "Qualification certificates of technical staff", 1, True, True, "", ""),
    "fin_statements": ("财务会计报表", "Financial statements", 1, False, False,
                       "按规定需报送财务报表的纳税人提供", "From taxpayers required to file financial statements"),
    "safety_rules": ("安全生产管理制度和操作规程", "Work safety rules and operating procedures", 1, False, False, "", ""),
    "mgmt_rules": ("内部管理制度", "Internal management rules", 1, False, False, "", ""),
    "supporting": ("相关证明材料", "Supporting documents", 1, False, False,
                   "按具体情形提供，窗口一次性告知", "Depending on the case; the window lists them all at once"),
    "site_photos": ("场所内外部照片", "Photos of the premises inside and outside", 1, False, False, "", ""),
}


def _it(key: str, req: str = "required", **over: Any) -> dict[str, Any]:
    """One checklist item from the library, with per-matter overrides (name, copies, notes...)."""
    zh, en, copies, original, e_lic, nzh, nen = MATERIALS[key]
    item: dict[str, Any] = {
        "key": key, "name_zh": zh, "name_en": en, "requirement": req, "copies": copies,
        "original_required": original, "e_licence": e_lic, "notes_zh": nzh, "notes_en": nen,
    }
    item.update(over)
    return item


def _form(zh: str, en: str, **over: Any) -> dict[str, Any]:
    """The matter's own application form (申请书/申请表) under its real name."""
    return _it("application", name_zh=zh, name_en=en, **over)


def _agent() -> list[dict[str, Any]]:
    """Every guide ends with the same two optional items for an agent (代办)."""
    return [_it("poa", "optional"), _it("agent_id", "optional")]


# --------------------------------------------------------------------------------------------
# Hand-written matters, as the service guides (办事指南) list them
# --------------------------------------------------------------------------------------------


def _h(cat: str, dept: str, name_zh: str, name_en: str, days: int, items: list[dict[str, Any]],
       *, instant: bool = False, cross: bool = False) -> dict[str, Any]:
    return {"category": cat, "dept": dept, "name_zh": name_zh, "name_en": name_en,
            "time_limit_days": days, "instant": instant, "cross_region": cross, "items": items}


def _hand_written() -> list[dict[str, Any]]:
    # Shorthands for the items almost every guide lists.
    idc = _it("id_card")
    lic = _it("biz_licence")
    return [
        # ---- A 市场主体登记 ----
        _h("A", "approval", "个体工商户设立登记", "Registration of an individual business", 0, [
            _form("个体工商户登记（备案）申请书", "Individual business registration (filing) application"),
            _it("id_card", name_zh="经营者居民身份证", name_en="Operator's resident identity card"),
            _it("premises", "accepted_pending", notes_zh="可容缺受理，承诺5个工作日内补齐", notes_en="May be supplied within 5 working days (accepted pending)"),
            _it("name_notice", "optional", notes_zh="申请名称的提供", notes_en="Only if the business is to have a name"),
            *_agent()], instant=True),
        _h("A", "approval", "个体工商户变更登记", "Change of registration of an individual business", 0, [
            _form("个体工商户变更登记（备案）申请书", "Individual business change registration application"),
            _it("id_card", name_zh="经营者居民身份证", name_en="Operator's resident identity card"),
            lic,
            _it("premises", "optional", notes_zh="变更经营场所的提供", notes_en="Only when the premises change"),
            *_agent()], instant=True),
        _h("A", "approval", "个体工商户注销登记", "Deregistration of an individual business", 0, [
            _form("个体工商户注销登记申请书", "Individual business deregistration application"),
            _it("id_card", name_zh="经营者居民身份证", name_en="Operator's resident identity card"),
            _it("old_cert", name_zh="营业执照正、副本", name_en="Business licence (original and duplicate)"),
            _it("clearance", "optional", notes_zh="未办理涉税事项的免于提交", notes_en="Not needed if no tax matters were ever handled"),
            *_agent()]),
        _h("A", "approval", "个人独资企业设立登记", "Registration of a sole proprietorship", 1, [
            _form("个人独资企业登记（备案）申请书", "Sole proprietorship registration application"),
            _it("id_card", name_zh="投资人居民身份证", name_en="Investor's resident identity card"),
            _it("premises", name_zh="企业住所使用证明", name_en="Proof of use of the enterprise's domicile"),
            _it("name_notice"),
            *_agent()]),
        _h("A", "approval", "有限责任公司设立登记", "Registration of a limited liability company", 1, [
            _form("公司登记（备案）申请书", "Company registration (filing) application"),
            _it("articles"),
            _it("shareholders"),
            _it("officers"),
            _it("premises", "accepted_pending", name_zh="住所使用证明", name_en="Proof of use of the domicile",
                notes_zh="可容缺受理，实行住所申报承诺制", notes_en="Accepted pending under the domicile self-declaration scheme"),
            _it("name_notice"),
            *_agent()]),
        _h("A", "approval", "公司变更登记", "Change of company registration", 1, [
            _form("公司登记（备案）申请书", "Company registration (filing) application"),
            _it("resolution", notes_zh="依照《公司法》作出的变更决议或决定", notes_en="Resolution or decision made under the Company Law"),
            _it("articles", "optional", name_zh="修改后的公司章程或章程修正案", name_en="Amended articles or amendment",
                notes_zh="变更事项涉及章程修改的提交", notes_en="When the change amends the articles"),
            _it("change_proof"),
            lic,
            *_agent()]),
        _h("A", "approval", "公司注销登记", "Deregistration of a company", 3, [
            _form("公司注销登记申请书", "Company deregistration application"),
            _it("resolution", name_zh="依法作出解散的决议或决定", name_en="Resolution or decision to dissolve"),
            _it("liquidation", notes_zh="经股东会确认的清算报告", notes_en="Confirmed by the shareholders' meeting"),
            _it("clearance"),
            _it("old_cert", name_zh="营业执照正、副本", name_en="Business licence (original and duplicate)"),
            *_agent()]),
        _h("A", "approval", "公司简易注销登记", "Simplified deregistration of a company", 1, [
            _form("简易注销登记申请书", "Simplified deregistration application"),
            _it("commitment", name_zh="全体投资人承诺书", name_en="Commitment letter of all investors",
                notes_zh="公示期满20日无异议后提交", notes_en="Submitted after a 20-day public notice without objection"),
            _it("old_cert", name_zh="营业执照正、副本", name_en="Business licence (original and duplicate)"),
            *_agent()]),
        _h("A", "approval", "合伙企业设立登记", "Registration of a partnership enterprise", 1, [
            _form("合伙企业登记（备案）申请书", "Partnership registration application"),
            _it("articles", name_zh="全体合伙人签署的合伙协议", name_en="Partnership agreement signed by all partners"),
            _it("shareholders", name_zh="全体合伙人的主体资格证明或身份证明", name_en="Legal status certificates or IDs of all partners"),
            _it("change_proof", name_zh="全体合伙人对各合伙人认缴或实际缴付出资的确认书", name_en="Partners' confirmation of each partner's contribution"),
            _it("premises", name_zh="主要经营场所使用证明", name_en="Proof of use of the main business premises"),
            _it("name_notice"),
            *_agent()]),
        _h("A", "approval", "农民专业合作社设立登记", "Registration of a farmers' cooperative", 1, [
            _form("农民专业合作社登记（备案）申请书", "Farmers' cooperative registration application"),
            _it("articles", name_zh="全体设立人签名、盖章的设立大会纪要和章程", name_en="Founding meeting minutes and articles signed by all founders"),
            _it("officers", name_zh="法定代表人、理事的任职文件及身份证明", name_en="Appointment documents and IDs of the legal representative and directors"),
            _it("change_proof", name_zh="成员名册及出资清单", name_en="Member roster and contribution list"),
            _it("premises", name_zh="住所使用证明", name_en="Proof of use of the domicile"),
            *_agent()]),
        _h("A", "approval", "分公司设立登记", "Registration of a branch company", 1, [
            _form("分公司登记（备案）申请书", "Branch registration application"),
            _it("biz_licence", name_zh="隶属公司营业执照", name_en="Business licence of the parent company"),
            _it("officers", name_zh="分公司负责人任职文件及身份证明", name_en="Appointment and ID of the branch manager"),
            _it("premises", name_zh="营业场所使用证明", name_en="Proof of use of the branch premises"),
            *_agent()]),
        _h("A", "approval", "营业执照补领、换发", "Reissue or replacement of a business licence", 0, [
            _form("营业执照补领（换发）申请书", "Business licence reissue application"),
            _it("loss_notice", "optional", notes_zh="执照遗失补领的提交", notes_en="Only when the licence was lost"),
            _it("old_cert", "optional", name_zh="原营业执照", name_en="Original business licence", notes_zh="损毁换发的交回", notes_en="Returned when damaged"),
            idc,
            *_agent()], instant=True),
        # ---- B 许可审批 ----
        _h("B", "approval", "食品经营许可（新办）", "Food business licence (new)", 5, [
            _form("食品经营许可申请书", "Food business licence application"),
            lic,
            _it("id_card", name_zh="法定代表人（负责人）身份证明", name_en="ID of the legal representative (person in charge)"),
            _it("premises"),
            _it("layout", name_zh="与食品经营相适应的经营场所平面图和设备布局图", name_en="Floor plan and equipment layout suited to the food business"),
            _it("food_rules"),
            _it("food_manager"),
            _it("health_cert", "accepted_pending", notes_zh="可容缺受理，发证前补齐", notes_en="Accepted pending; due before the licence is issued"),
            *_agent()]),
        _h("B", "approval", "食品经营许可（延续）", "Food business licence (renewal)", 5, [
            _form("食品经营许可延续申请书", "Food business licence renewal application"),
            lic,
            _it("old_cert", name_zh="原食品经营许可证正、副本", name_en="Current food business licence (original and duplicate)"),
            _it("commitment", name_zh="经营条件未发生变化的承诺书", name_en="Commitment that business conditions are unchanged",
                notes_zh="条件有变化的另附变化情况说明", notes_en="If conditions changed, attach a description"),
            _it("health_cert", "accepted_pending"),
            *_agent()]),
        _h("B", "approval", "食品经营许可（变更）", "Food business licence (change)", 5, [
            _form("食品经营许可变更申请书", "Food business licence change application"),
            lic,
            _it("old_cert", name_zh="原食品经营许可证正、副本", name_en="Current food business licence (original and duplicate)"),
            _it("change_proof"),
            _it("layout", "optional", notes_zh="变更经营项目或布局的提交", notes_en="When business items or layout change"),
            *_agent()]),
        _h("B", "market", "小餐饮登记", "Registration of a small eatery", 0, [
            _form("小餐饮登记申请表", "Small eatery registration form"),
            lic,
            idc,
            _it("premises"),
            _it("health_cert", "accepted_pending"),
            _it("commitment", name_zh="小餐饮食品安全承诺书", name_en="Small eatery food safety commitment"),
            *_agent()], instant=True),
        _h("B", "approval", "药品零售企业许可", "Drug retail enterprise licence", 15, [
            _form("药品经营许可证申请表", "Drug trading licence application"),
            lic,
            _it("officers", name_zh="企业负责人、质量负责人的身份证明、学历及职称证明", name_en="IDs, diplomas and titles of the head and the quality manager"),
            _it("pharmacist"),
            _it("premises", name_zh="经营场所和仓库的使用证明", name_en="Proof of use of the shop and warehouse"),
            _it("layout", name_zh="经营场所、仓库平面布局图", name_en="Floor plans of the shop and warehouse"),
            _it("drug_rules"),
            _it("equipment_list", name_zh="计算机管理系统及设施设备清单", name_en="Computer system and list of equipment"),
            *_agent()]),
        _h("B", "approval", "第二类医疗器械经营备案", "Filing of class II medical device trading", 0, [
            _form("第二类医疗器械经营备案表", "Class II medical device trading filing form"),
            lic,
            _it("officers", name_zh="法定代表人、企业负责人、质量负责人身份证明及学历职称", name_en="IDs and qualifications of the legal representative, head and quality manager"),
            _it("premises", name_zh="经营场所、库房地址的地理位置图、平面图及使用证明", name_en="Location maps, floor plans and proof of use of the premises and storeroom"),
            _it("drug_rules", name_zh="经营质量管理制度、工作程序文件目录", name_en="Quality management rules and procedure index"),
            *_agent()], instant=True),
        _h("B", "approval", "公共场所卫生许可", "Public place hygiene permit", 5, [
            _form("公共场所卫生许可申请表", "Public place hygiene permit application"),
            lic,
            idc,
            _it("layout", name_zh="公共场所地址方位示意图、平面图和卫生设施平面布局图", name_en="Location sketch, floor plan and layout of hygiene facilities"),
            _it("hygiene_report", "accepted_pending", notes_zh="实行告知承诺的可容缺，开业后补交", notes_en="Accepted pending under the commitment scheme; due after opening"),
            _it("hygiene_rules"),
            _it("health_cert", name_zh="从业人员健康合格证明", name_en="Health certificates of staff"),
            *_agent()]),
        _h("B", "approval", "医疗机构执业登记", "Practice registration of a medical institution", 20, [
            _form("医疗机构执业登记申请书", "Medical institution practice registration application"),
            _it("change_proof", name_zh="医疗机构设置批准书或备案回执", name_en="Approval or filing receipt for setting up the institution"),
            _it("premises", name_zh="医疗机构用房产权证明或使用证明", name_en="Title or proof of use of the premises"),
            _it("layout", name_zh="医疗机构建筑设计平面图", name_en="Architectural floor plan"),
            _it("staff_qual", name_zh="医师、护士等卫生技术人员执业证书", name_en="Practising certificates of doctors, nurses and other health staff"),
            _it("hygiene_rules", name_zh="医疗机构规章制度", name_en="Rules of the medical institution"),
            _it("officers", name_zh="法定代表人或主要负责人身份证明", name_en="ID of the legal representative or principal"),
            *_agent()]),
        _h("B", "culture", "娱乐场所经营许可", "Entertainment venue business licence", 10, [
            _form("娱乐场所经营许可申请表", "Entertainment venue licence application"),
            lic,
            idc,
            _it("premises"),
            _it("fire_ok"),
            _it("layout", name_zh="经营场所平面示意图（标明包厢、通道）", name_en="Floor sketch marking rooms and passages"),
            _it("commitment", name_zh="投资人、法定代表人无禁止情形的书面声明", name_en="Declaration that no prohibited circumstances apply"),
            *_agent()]),
        _h("B", "culture", "出版物零售业务许可", "Publication retail licence", 10, [
            _form("出版物零售业务申请表", "Publication retail application"),
            lic,
            _it("premises"),
            idc,
            *_agent()]),
        _h("B", "transport", "道路普通货物运输经营许可", "Road freight transport business licence", 5, [
            _form("道路货物运输经营申请表", "Road freight transport application"),
            lic,
            _it("change_proof", name_zh="机动车辆行驶证、车辆技术等级评定结论", name_en="Vehicle licences and technical grade ratings"),
            _it("staff_qual", name_zh="驾驶人员从业资格证", name_en="Drivers' professional qualification certificates"),
            _it("hygiene_rules", name_zh="安全生产管理制度", name_en="Work safety management rules"),
            *_agent()]),
        # ---- C 工程建设 ----
        _h("C", "approval", "建筑工程施工许可", "Construction permit for a building project", 3, [
            _form("建筑工程施工许可证申请表", "Construction permit application"),
            _it("land_cert"),
            _it("planning_permit"),
            _it("contract_award"),
            _it("drawings"),
            _it("quality_commit"),
            _it("funding_proof"),
            _it("biz_licence", name_zh="建设单位营业执照或法人证书", name_en="Developer's business licence or legal person certificate"),
            *_agent()]),
        _h("C", "urban", "城市建筑垃圾处置核准", "Approval of urban construction waste disposal", 5, [
            _form("城市建筑垃圾处置核准申请表", "Construction waste disposal application"),
            lic,
            _it("change_proof", name_zh="建筑垃圾处置方案", name_en="Construction waste disposal plan"),
            _it("transport_contract"),
            _it("disposal_site"),
            _it("planning_permit", "optional", name_zh="建设工程规划许可证或施工许可证", name_en="Planning or construction permit"),
            *_agent()]),
        _h("C", "urban", "户外广告设置许可", "Outdoor advertising permit", 5, [
            _form("户外广告设置申请表", "Outdoor advertising application"),
            lic,
            _it("ad_design"),
            _it("premises", name_zh="广告设施载体使用证明（产权证明或使用协议）", name_en="Proof of right to use the carrier (title or agreement)"),
            _it("structure_safety", "optional"),
            *_agent()]),
        _h("C", "planning", "建设工程规划许可证核发", "Issue of a construction project planning permit", 10, [
            _form("建设工程规划许可申请表", "Construction planning permit application"),
            _it("land_cert"),
            _it("drawings", name_zh="建设工程设计方案", name_en="Construction design scheme"),
            _it("survey", name_zh="1:500地形图", name_en="1:500 topographic map"),
            _it("biz_licence", name_zh="建设单位营业执照", name_en="Developer's business licence"),
            *_agent()]),
        _h("C", "construction", "房屋建筑和市政基础设施工程竣工验收备案", "Completion acceptance filing of building and municipal works", 3, [
            _form("竣工验收备案表", "Completion acceptance filing form"),
            _it("change_proof", name_zh="工程竣工验收报告", name_en="Completion acceptance report"),
            _it("fire_ok", name_zh="消防验收合格意见或备案凭证", name_en="Fire acceptance approval or filing receipt"),
            _it("quality_commit", name_zh="施工单位签署的工程质量保修书", name_en="Quality warranty signed by the contractor"),
            _it("planning_permit", name_zh="规划条件核实意见", name_en="Planning conditions verification"),
            *_agent()]),
        _h("C", "urban", "挖掘城市道路审批", "Approval of digging up a city road", 5, [
            _form("挖掘城市道路申请表", "Road excavation application"),
            _it("change_proof", name_zh="施工方案及交通组织方案", name_en="Works plan and traffic management plan"),
            _it("planning_permit", name_zh="建设工程规划许可证或管线批准文件", name_en="Planning permit or pipeline approval"),
            _it("commitment", name_zh="道路恢复承诺书", name_en="Road reinstatement commitment"),
            *_agent()]),
        _h("C", "construction", "城镇污水排入排水管网许可", "Permit to discharge sewage into the urban drainage network", 7, [
            _form("城镇污水排入排水管网许可申请表", "Drainage permit application"),
            lic,
            _it("layout", name_zh="排水户内部排水管网、专用检测井、接入位置平面图", name_en="Plan of internal drains, inspection wells and connection points"),
            _it("hygiene_report", name_zh="排水水质检测报告", name_en="Discharge water quality test report"),
            _it("equipment_list", "optional", name_zh="预处理设施说明", name_en="Description of pre-treatment facilities"),
            *_agent()]),
        # ---- D 社会事务 ----
        _h("D", "police", "养犬登记", "Dog registration", 0, [
            _form("养犬登记表", "Dog registration form"),
            idc,
            _it("dog_vaccine"),
            _it("dog_photo"),
            _it("residence_proof", name_zh="养犬人住所证明", name_en="Proof of the owner's residence"),
            *_agent()], instant=True),
        _h("D", "police", "居住证办理", "Residence permit", 7, [
            _form("居住证申领登记表", "Residence permit application form"),
            idc,
            _it("photo", copies=1, notes_zh="也可现场采集数码照片", notes_en="A digital photo can be taken on site"),
            _it("residence_proof"),
            _it("work_proof", "optional", notes_zh="居住半年以上并有就业、就读之一的提供", notes_en="One of employment or study, after six months' residence"),
            *_agent()]),
        _h("D", "hrss", "城乡居民基本养老保险参保登记", "Enrolment in basic pension insurance for urban and rural residents", 0, [
            _form("城乡居民基本养老保险参保登记表", "Residents' pension enrolment form"),
            idc,
            _it("household"),
            _it("ssc", "optional", notes_zh="已有社保卡的出示", notes_en="If the applicant already has one"),
            *_agent()], instant=True),
        _h("D", "medins", "城乡居民基本医疗保险参保登记", "Enrolment in basic medical insurance for urban and rural residents", 0, [
            _form("城乡居民医疗保险参保登记表", "Residents' medical insurance enrolment form"),
            idc,
            _it("household"),
            _it("birth_cert", "optional", notes_zh="新生儿参保提供", notes_en="For newborns"),
            _it("residence_proof", "optional", name_zh="居住证", name_en="Residence permit", e_licence=True,
                notes_zh="非本地户籍人员提供", notes_en="For residents without local household registration"),
            *_agent()], instant=True),
        _h("D", "medins", "生育津贴申领", "Claim for maternity allowance", 10, [
            _form("生育津贴申领表", "Maternity allowance claim form"),
            idc,
            _it("birth_cert", notes_zh="或医院出具的生育诊断证明", notes_en="Or the hospital's childbirth diagnosis"),
            _it("medical_record", "optional", name_zh="难产、多胞胎诊断证明", name_en="Diagnosis of difficult or multiple birth",
                notes_zh="申请增加产假天数的提供", notes_en="To claim extra leave days"),
            _it("bank_card", name_zh="用人单位银行账户信息", name_en="Employer's bank account details",
                notes_zh="津贴拨付至用人单位", notes_en="The allowance is paid to the employer"),
            *_agent()]),
        _h("D", "hrss", "失业保险金申领", "Claim for unemployment insurance benefit", 0, [
            _form("失业保险金申领登记表", "Unemployment benefit claim form"),
            idc,
            _it("separation_proof", notes_zh="单位已网上报送的免于提交", notes_en="Not needed if the employer reported it online"),
            _it("bank_card"),
            *_agent()]),
        _h("D", "hrss", "就业登记", "Employment registration", 0, [
            _form("就业登记表", "Employment registration form"),
            idc,
            _it("labour_contract", notes_zh="或营业执照（自主创业）", notes_en="Or a business licence (self-employed)"),
            *_agent()], instant=True),
        _h("D", "civil", "最低生活保障申请", "Application for minimum living allowance (dibao)", 30, [
            _form("最低生活保障申请书", "Minimum living allowance application"),
            idc,
            _it("household"),
            _it("asset_auth"),
            _it("income_proof"),
            _it("medical_record", "optional", name_zh="重病、重残证明", name_en="Proof of serious illness or disability",
                notes_zh="家庭成员患重病或重残的提供", notes_en="If a family member is seriously ill or disabled"),
            _it("bank_card"),
            *_agent()]),
        _h("D", "disabled", "残疾人证办理", "Disability certificate (new)", 20, [
            _form("中华人民共和国残疾人证申请表", "Disability certificate application"),
            idc,
            _it("household"),
            _it("photo", copies=3, name_zh="近期二寸免冠彩色照片", name_en="Recent 2-inch bareheaded colour photos"),
            _it("medical_record", "optional", notes_zh="有助于残疾评定的病历资料", notes_en="Records that help the disability assessment"),
            *_agent()]),
        _h("D", "civil", "高龄津贴申请", "Application for old-age allowance (80+)", 10, [
            _form("高龄津贴申请表", "Old-age allowance application"),
            idc,
            _it("household"),
            _it("bank_card"),
            *_agent()], instant=True),
        _h("D", "civil", "结婚登记", "Marriage registration", 0, [
            _it("id_card", name_zh="男女双方居民身份证", name_en="Both parties' resident identity cards", copies=2),
            _it("household", "optional", notes_zh="全国通办试点地区可免于提交", notes_en="Not needed in nationwide pilot areas"),
            _it("photo", copies=3, name_zh="男女双方二寸近期半身免冠合影照片", name_en="Three 2-inch joint half-length photos of the couple",
                notes_zh="红底，可现场拍摄", notes_en="Red background; can be taken on site"),
            _form("申请结婚登记声明书", "Marriage registration declaration",
                  notes_zh="双方在婚姻登记员面前签署", notes_en="Signed by both before the registrar"),
        ]),
        _h("D", "hrss", "社会保障卡申领", "Application for a social security card", 0, [
            _form("社会保障卡申领表", "Social security card application"),
            idc,
            _it("photo", copies=1, notes_zh="可现场采集", notes_en="Can be taken on site"),
            *_agent()], instant=True),
        _h("D", "hrss", "灵活就业人员参保登记", "Social insurance enrolment of flexibly employed persons", 0, [
            _form("灵活就业人员参保登记表", "Flexible employment enrolment form"),
            idc,
            _it("household", "optional", notes_zh="非本地户籍提供居住证", notes_en="A residence permit for non-local residents"),
            *_agent()], instant=True),
        # ---- E 不动产登记 ----
        _h("E", "realestate", "不动产首次登记（国有建设用地使用权及房屋所有权）", "First registration of state land use right and house ownership", 5, [
            _form("不动产登记申请书", "Real estate registration application"),
            idc,
            _it("land_cert", name_zh="土地权属来源材料", name_en="Land title source documents"),
            _it("change_proof", name_zh="建设工程符合规划的材料及竣工材料", name_en="Planning conformity and completion documents"),
            _it("survey"),
            _it("tax_paid", "optional"),
            *_agent()]),
        _h("E", "realestate", "不动产转移登记（二手房买卖）", "Transfer registration (resale home purchase)", 1, [
            _form("不动产登记申请书", "Real estate registration application"),
            _it("id_card", name_zh="买卖双方居民身份证", name_en="IDs of buyer and seller", copies=2),
            _it("property_cert"),
            _it("sale_contract"),
            _it("marriage", "optional", notes_zh="出卖人婚姻状况证明，共有房产需配偶同意", notes_en="Seller's marital status; a spouse must consent for joint property"),
            _it("tax_paid"),
            *_agent()]),
        _h("E", "realestate", "不动产抵押权首次登记", "First registration of a mortgage", 1, [
            _form("不动产登记申请书", "Real estate registration application"),
            idc,
            _it("property_cert"),
            _it("mortgage_contract"),
            _it("creditor_id"),
            *_agent()]),
        _h("E", "realestate", "抵押权注销登记", "Cancellation of a mortgage registration", 0, [
            _form("不动产登记申请书", "Real estate registration application"),
            _it("change_proof", name_zh="抵押权人出具的债权消灭或放弃抵押权证明", name_en="Mortgagee's proof that the debt is paid or the mortgage waived"),
            _it("property_cert", name_zh="不动产登记证明（抵押）", name_en="Real estate registration certificate (mortgage)"),
            _it("creditor_id"),
            *_agent()], instant=True),
        _h("E", "realestate", "预购商品房预告登记", "Advance notice registration of a pre-sale home", 1, [
            _form("不动产登记申请书", "Real estate registration application"),
            idc,
            _it("sale_contract", name_zh="已备案的商品房预售合同", name_en="Filed pre-sale contract"),
            _it("biz_licence", name_zh="开发企业营业执照", name_en="Developer's business licence"),
            *_agent()]),
        _h("E", "realestate", "不动产更正登记", "Correction registration of real estate", 10, [
            _form("不动产登记申请书", "Real estate registration application"),
            idc,
            _it("property_cert"),
            _it("change_proof", name_zh="证实登记确有错误的材料", name_en="Evidence that the register is wrong"),
            *_agent()]),
        # ---- F 税务 ----
        _h("F", "tax", "新办纳税人套餐", "New taxpayer package", 0, [
            lic,
            _it("id_card", name_zh="法定代表人身份证件", name_en="ID of the legal representative"),
            _it("finance_staff"),
            _form("新办纳税人涉税事项综合申请表", "Combined tax matters application for new taxpayers"),
            _it("seal", "optional", notes_zh="电子签章的免于提交", notes_en="Not needed with an electronic seal"),
        ], instant=True),
        _h("F", "tax", "发票领用", "Invoice collection", 0, [
            _it("id_card", name_zh="经办人身份证件", name_en="ID of the person handling it"),
            _it("invoice_book"),
            _form("发票领用申请", "Invoice collection request", notes_zh="数电发票试点纳税人无需领用", notes_en="Taxpayers on fully digital invoices need not collect"),
        ], instant=True),
        _h("F", "tax", "个人所得税综合所得汇算清缴辅导申报", "Assisted annual individual income tax reconciliation", 0, [
            _it("id_card"),
            _it("income_docs"),
            _it("bank_card", "optional", name_zh="本人银行卡（用于退税）", name_en="Own bank card (for the refund)", original_required=False),
        ], instant=True),
        _h("F", "tax", "代开增值税普通发票", "Issuing a VAT ordinary invoice on behalf of the taxpayer", 0, [
            _form("代开增值税发票缴纳税款申报单", "Invoice issuance and tax declaration form"),
            _it("id_card"),
            _it("change_proof", name_zh="合同、协议等付款方证明材料", name_en="Contract or agreement with the payer"),
        ]),
        _h("F", "tax", "清税申报（税务注销）", "Tax clearance (tax deregistration)", 0, [
            _form("清税申报表", "Tax clearance declaration"),
            _it("id_card", name_zh="经办人身份证件", name_en="ID of the person handling it"),
            _it("invoice_book", "optional", name_zh="未验旧、未使用的发票", name_en="Unused or unverified invoices"),
            _it("resolution", "optional", name_zh="上级主管部门批复文件或董事会决议", name_en="Approval of the superior body or board resolution"),
        ], instant=True),
        _h("F", "tax", "开具税收完税证明", "Tax payment certificate", 0, [
            _it("id_card"),
            _form("税收完税证明申请", "Tax payment certificate request"),
            _it("tax_paid", "optional", name_zh="原完税凭证", name_en="Original payment receipts"),
        ], instant=True),
        # ---- G 综合受理·跨省通办 ----
        _h("G", "fund", "住房公积金提取（购买自住住房）", "Housing provident fund withdrawal (buying own home)", 3, [
            idc,
            _it("house_purchase"),
            _it("property_cert", "optional", notes_zh="已取得不动产权证书的提供", notes_en="If the title has been issued"),
            _it("marriage", "optional", notes_zh="提取配偶公积金的提供", notes_en="To withdraw the spouse's fund too"),
            _it("fund_card"),
        ]),
        _h("G", "fund", "住房公积金提取（租房）", "Housing provident fund withdrawal (renting)", 0, [
            idc,
            _it("rent_proof"),
            _it("fund_card"),
        ], instant=True),
        _h("G", "medins", "异地就医备案（跨省通办）", "Registration for medical treatment in another province (cross-province)", 0, [
            _form("异地就医登记备案表", "Cross-region medical treatment registration form"),
            idc,
            _it("ssc"),
            _it("residence_proof", "optional", name_zh="异地长期居住证明或个人承诺书", name_en="Proof of long-term residence elsewhere or personal commitment"),
            *_agent()], instant=True, cross=True),
        _h("G", "hrss", "养老保险关系转移接续（跨省通办）", "Transfer of pension insurance relationship (cross-province)", 15, [
            _form("基本养老保险关系转移接续申请表", "Pension transfer application"),
            idc,
            _it("transfer_cert"),
            *_agent()], cross=True),
        _h("G", "police", "户口迁移（跨省通办）", "Household registration transfer (cross-province)", 0, [
            _form("户口迁移申请表", "Household transfer application"),
            idc,
            _it("household"),
            _it("residence_proof", name_zh="迁入地合法稳定住所证明", name_en="Proof of lawful residence at the destination"),
            _it("transfer_permit", "optional"),
        ], cross=True),
        _h("G", "hrss", "失业登记（跨省通办）", "Unemployment registration (cross-province)", 0, [
            _form("失业登记表", "Unemployment registration form"),
            idc,
            _it("separation_proof", "optional"),
        ], instant=True, cross=True),
        _h("G", "approval", "个体工商户设立登记（跨省通办）", "Registration of an individual business (cross-province)", 0, [
            _form("个体工商户登记（备案）申请书", "Individual business registration application"),
            _it("id_card", name_zh="经营者居民身份证", name_en="Operator's resident identity card"),
            _it("premises", "accepted_pending"),
            *_agent()], instant=True, cross=True),
    ]


# --------------------------------------------------------------------------------------------
# Derived matters: entity types, industries, insurances, rights, taxes x actions
# --------------------------------------------------------------------------------------------

# An action turns a subject into a matter: (key, name_zh fmt, name_en fmt, days, instant).
_Action = tuple[str, str, str, int, bool]

_PERMIT_ACTIONS: list[_Action] = [
    ("new", "{zh}（新办）", "{en} (new)", -1, False),
    ("change", "{zh}（变更）", "{en} (change)", -1, False),
    ("renew", "{zh}（延续）", "{en} (renewal)", -1, False),
    ("cancel", "{zh}（注销）", "{en} (cancellation)", 0, True),
    ("reissue", "{zh}（补证）", "{en} (reissue)", 0, True),
]

_REG_ACTIONS: dict[str, _Action] = {
    "set": ("new", "{zh}设立登记", "Registration of a {en}", 1, False),
    "name": ("change", "{zh}变更登记（名称）", "Change of name of a {en}", 0, True),
    "domicile": ("change", "{zh}变更登记（住所、经营场所）", "Change of domicile of a {en}", 0, True),
    "head": ("change", "{zh}变更登记（法定代表人、负责人）", "Change of legal representative of a {en}", 1, False),
    "scope": ("change", "{zh}变更登记（经营范围）", "Change of business scope of a {en}", 0, True),
    "capital": ("change", "{zh}变更登记（注册资本、出资额）", "Change of capital of a {en}", 1, False),
    "members": ("change", "{zh}变更登记（股东、投资人、合伙人）", "Change of shareholders or partners of a {en}", 1, False),
    "charter": ("filing", "{zh}备案（章程、协议）", "Filing of the articles of a {en}", 0, True),
    "officers": ("filing", "{zh}备案（董事、监事、经理）", "Filing of officers of a {en}", 0, True),
    "liquidation": ("filing", "{zh}清算组备案", "Filing of the liquidation group of a {en}", 0, True),
    "cancel": ("cancel", "{zh}注销登记", "Deregistration of a {en}", 3, False),
    "simple_cancel": ("cancel", "{zh}简易注销登记", "Simplified deregistration of a {en}", 1, False),
    "reissue": ("reissue", "{zh}营业执照补领、换发", "Business licence reissue for a {en}", 0, True),
}
_ALL_REG = list(_REG_ACTIONS)
_BRANCH_REG = ["set", "name", "domicile", "head", "scope", "cancel", "reissue"]
_SOLE_REG = ["set", "name", "domicile", "members", "scope", "capital", "cancel", "simple_cancel", "reissue"]

# (zh, en, applicable registration actions)
_ENTITIES: list[tuple[str, str, list[str]]] = [
    ("有限责任公司（自然人独资）", "one-person limited liability company", _ALL_REG),
    ("有限责任公司（自然人投资或控股）", "privately held limited liability company", _ALL_REG),
    ("有限责任公司（国有独资）", "wholly state-owned limited liability company", _ALL_REG),
    ("有限责任公司（外商投资）", "foreign-invested limited liability company", _ALL_REG),
    ("有限责任公司（港澳台投资）", "Hong Kong, Macao or Taiwan-invested limited liability company", _ALL_REG),
    ("股份有限公司（非上市）", "unlisted joint stock company", _ALL_REG),
    ("有限责任公司分公司", "branch of a limited liability company", _BRANCH_REG),
    ("股份有限公司分公司", "branch of a joint stock company", _BRANCH_REG),
    ("外商投资企业分公司", "branch of a foreign-invested enterprise", _BRANCH_REG),
    ("个人独资企业", "sole proprietorship", _SOLE_REG),
    ("个人独资企业分支机构", "branch of a sole proprietorship", _BRANCH_REG),
    ("普通合伙企业", "general partnership", _SOLE_REG + ["charter"]),
    ("有限合伙企业", "limited partnership", _SOLE_REG + ["charter"]),
    ("合伙企业分支机构", "branch of a partnership", _BRANCH_REG),
    ("农民专业合作社", "farmers' cooperative", _SOLE_REG + ["charter"]),
    ("农民专业合作社联合社", "federation of farmers' cooperatives", _SOLE_REG + ["charter"]),
    ("农民专业合作社分支机构", "branch of a farmers' cooperative", _BRANCH_REG),
    ("非公司企业法人", "non-company enterprise legal person", ["set", "name", "domicile", "head", "scope", "capital", "cancel", "reissue"]),
    ("集体所有制企业", "collectively owned enterprise", ["set", "name", "domicile", "head", "scope", "capital", "cancel", "reissue"]),
    ("外国企业常驻代表机构", "resident representative office of a foreign enterprise", ["set", "name", "domicile", "head", "cancel", "reissue"]),
    ("个体工商户", "individual business", ["name", "scope", "members", "simple_cancel"]),
]

# Permits: (category, dept, subject zh, subject en, days for new/change/renew, extra library keys)
_PERMITS: list[tuple[str, str, str, str, int, list[str]]] = [
    ("B", "approval", "食品经营许可（食品销售·预包装食品）", "Food business licence (prepackaged food retail)", 5, ["premises", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（食品销售·散装食品）", "Food business licence (bulk food retail)", 5, ["premises", "layout", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（特殊食品销售·保健食品）", "Food business licence (health food retail)", 5, ["premises", "food_rules", "food_manager"]),
    ("B", "approval", "食品经营许可（特殊食品销售·婴幼儿配方乳粉）", "Food business licence (infant formula retail)", 5, ["premises", "food_rules", "food_manager"]),
    ("B", "approval", "食品经营许可（餐饮服务·热食类）", "Food business licence (catering, hot food)", 5, ["premises", "layout", "process_flow", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（餐饮服务·冷食类）", "Food business licence (catering, cold food)", 5, ["premises", "layout", "process_flow", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（餐饮服务·生食类）", "Food business licence (catering, raw food)", 5, ["premises", "layout", "process_flow", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（餐饮服务·糕点类）", "Food business licence (catering, pastries)", 5, ["premises", "layout", "process_flow", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（餐饮服务·自制饮品）", "Food business licence (catering, home-made drinks)", 5, ["premises", "layout", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（单位食堂·学校）", "Food business licence (school canteen)", 5, ["premises", "layout", "process_flow", "food_rules", "food_manager", "health_cert"]),
    ("B", "approval", "食品经营许可（单位食堂·养老机构）", "Food business licence (care home canteen)", 5, ["premises", "layout", "process_flow", "food_rules", "food_manager", "health_cert"]),
    ("B", "approval", "食品经营许可（单位食堂·企事业单位）", "Food business licence (workplace canteen)", 5, ["premises", "layout", "food_rules", "health_cert"]),
    ("B", "approval", "食品经营许可（中央厨房）", "Food business licence (central kitchen)", 10, ["premises", "layout", "process_flow", "food_rules", "food_manager", "health_cert"]),
    ("B", "approval", "食品经营许可（集体用餐配送单位）", "Food business licence (group meal delivery)", 10, ["premises", "layout", "process_flow", "food_rules", "food_manager", "health_cert"]),
    ("B", "market", "食品小作坊登记", "Small food workshop registration", 5, ["premises", "layout", "health_cert"]),
    ("B", "market", "食品摊点备案", "Food stall filing", 0, ["premises", "health_cert"]),
    ("B", "approval", "药品经营许可（零售连锁门店）", "Drug trading licence (chain pharmacy outlet)", 15, ["premises", "layout", "pharmacist", "drug_rules"]),
    ("B", "approval", "药品经营许可（单体药店）", "Drug trading licence (independent pharmacy)", 15, ["premises", "layout", "pharmacist", "drug_rules", "equipment_list"]),
    ("B", "approval", "第三类医疗器械经营许可", "Class III medical device trading licence", 20, ["premises", "layout", "drug_rules", "staff_qual"]),
    ("B", "approval", "公共场所卫生许可（宾馆）", "Public place hygiene permit (hotel)", 5, ["layout", "hygiene_report", "hygiene_rules", "health_cert"]),
    ("B", "approval", "公共场所卫生许可（旅店、招待所）", "Public place hygiene permit (guesthouse)", 5, ["layout", "hygiene_report", "hygiene_rules", "health_cert"]),
    ("B", "approval", "公共场所卫生许可（美容店）", "Public place hygiene permit (beauty salon)", 5, ["layout", "hygiene_report", "hygiene_rules", "health_cert"]),
    ("B", "approval", "公共场所卫生许可（理发店）", "Public place hygiene permit (barber shop)", 5, ["layout", "hygiene_report", "hygiene_rules", "health_cert"]),
    ("B", "approval", "公共场所卫生许可（公共浴室）", "Public place hygiene permit (public bathhouse)", 5, ["layout", "hygiene_report", "hygiene_rules", "health_cert"]),
    ("B", "approval", "公共场所卫生许可（游泳场所）", "Public place hygiene permit (swimming venue)", 5, ["layout", "hygiene_report", "hygiene_rules", "health_cert", "staff_qual"]),
    ("B", "approval", "公共场所卫生许可（影剧院、音乐厅）", "Public place hygiene permit (cinema, concert hall)", 5, ["layout", "hygiene_report", "hygiene_rules"]),
    ("B", "approval", "公共场所卫生许可（歌舞厅）", "Public place hygiene permit (karaoke, dance hall)", 5, ["layout", "hygiene_report", "hygiene_rules"]),
    ("B", "approval", "公共场所卫生许可（体育场馆）", "Public place hygiene permit (sports venue)", 5, ["layout", "hygiene_report", "hygiene_rules"]),
    ("B", "approval", "公共场所卫生许可（商场、书店）", "Public place hygiene permit (mall, bookshop)", 5, ["layout", "hygiene_report", "hygiene_rules"]),
    ("B", "approval", "医疗机构执业登记（诊所）", "Medical practice registration (clinic)", 20, ["premises", "layout", "staff_qual", "hygiene_rules"]),
    ("B", "approval", "医疗机构执业登记（中医诊所）", "Medical practice registration (TCM clinic)", 20, ["premises", "layout", "staff_qual", "hygiene_rules"]),
    ("B", "approval", "医疗机构执业登记（口腔诊所）", "Medical practice registration (dental clinic)", 20, ["premises", "layout", "staff_qual", "hygiene_rules", "equipment_list"]),
    ("B", "approval", "医疗机构执业登记（门诊部）", "Medical practice registration (outpatient department)", 20, ["premises", "layout", "staff_qual", "hygiene_rules", "equipment_list"]),
    ("B", "approval", "医疗机构执业登记（医务室、卫生所）", "Medical practice registration (infirmary)", 20, ["premises", "layout", "staff_qual"]),
    ("B", "approval", "医疗机构执业登记（护理站）", "Medical practice registration (nursing station)", 20, ["premises", "layout", "staff_qual"]),
    ("B", "health", "放射诊疗许可", "Radiological diagnosis and treatment permit", 20, ["layout", "equipment_list", "staff_qual", "hygiene_report"]),
    ("B", "health", "母婴保健技术服务执业许可", "Maternal and infant health technical service permit", 20, ["layout", "equipment_list", "staff_qual"]),
    ("B", "health", "医师执业注册", "Physician practice registration", 20, ["photo", "staff_qual", "medical_record"]),
    ("B", "health", "护士执业注册", "Nurse practice registration", 20, ["photo", "staff_qual", "medical_record"]),
    ("B", "culture", "营业性演出许可（文艺表演团体）", "Commercial performance licence (performing troupe)", 10, ["staff_qual", "premises"]),
    ("B", "culture", "营业性演出许可（演出经纪机构）", "Commercial performance licence (agency)", 10, ["staff_qual", "premises"]),
    ("B", "culture", "互联网上网服务营业场所经营许可", "Internet café business licence", 10, ["premises", "fire_ok", "layout", "equipment_list"]),
    ("B", "culture", "娱乐场所经营许可（游艺娱乐场所）", "Entertainment venue licence (amusement arcade)", 10, ["premises", "fire_ok", "layout"]),
    ("B", "culture", "艺术品经营单位备案", "Filing of an art dealer", 0, ["premises"]),
    ("B", "culture", "旅行社设立许可", "Travel agency licence", 20, ["premises", "staff_qual"]),
    ("B", "transport", "机动车维修经营备案", "Motor vehicle repair filing", 0, ["premises", "equipment_list", "staff_qual"]),
    ("B", "transport", "道路旅客运输经营许可", "Road passenger transport licence", 20, ["equipment_list", "staff_qual", "safety_rules"]),
    ("B", "transport", "机动车驾驶员培训备案", "Driver training filing", 0, ["premises", "equipment_list", "staff_qual"]),
    ("B", "agri", "农药经营许可", "Pesticide trading licence", 20, ["premises", "layout", "staff_qual"]),
    ("B", "agri", "兽药经营许可", "Veterinary drug trading licence", 20, ["premises", "layout", "staff_qual", "drug_rules"]),
    ("B", "agri", "动物防疫条件合格证核发", "Animal epidemic prevention conditions certificate", 20, ["layout", "hygiene_rules", "staff_qual"]),
    ("B", "agri", "动物诊疗许可", "Animal clinic licence", 20, ["premises", "layout", "equipment_list", "staff_qual"]),
    ("B", "agri", "农作物种子生产经营许可", "Crop seed production and trading licence", 20, ["premises", "equipment_list", "staff_qual"]),
    ("B", "education", "民办培训机构办学许可（文化艺术类）", "Private training school licence (arts)", 20, ["premises", "fire_ok", "staff_qual", "mgmt_rules"]),
    ("B", "education", "民办培训机构办学许可（体育类）", "Private training school licence (sports)", 20, ["premises", "fire_ok", "staff_qual", "mgmt_rules"]),
    ("B", "education", "幼儿园办园许可", "Kindergarten licence", 20, ["premises", "fire_ok", "staff_qual", "hygiene_report"]),
    ("B", "emergency", "危险化学品经营许可（不带储存）", "Hazardous chemicals trading licence (no storage)", 20, ["premises", "staff_qual", "safety_rules"]),
    ("B", "emergency", "烟花爆竹经营（零售）许可", "Fireworks retail licence", 10, ["premises", "fire_ok", "staff_qual"]),
    ("B", "market", "特种设备使用登记（电梯）", "Special equipment registration (lift)", 5, ["equipment_list", "staff_qual"]),
    ("B", "market", "特种设备使用登记（压力容器）", "Special equipment registration (pressure vessel)", 5, ["equipment_list", "staff_qual"]),
    ("B", "market", "特种设备使用登记（场（厂）内机动车辆）", "Special equipment registration (site vehicles)", 5, ["equipment_list", "staff_qual"]),
    ("C", "construction", "建筑业企业资质（施工总承包三级）", "Construction enterprise qualification (general contracting, grade III)", 20, ["staff_qual", "equipment_list"]),
    ("C", "construction", "建筑业企业资质（专业承包）", "Construction enterprise qualification (specialist contracting)", 20, ["staff_qual", "equipment_list"]),
    ("C", "construction", "施工劳务企业资质备案", "Labour subcontractor qualification filing", 0, ["staff_qual"]),
    ("C", "construction", "建筑施工企业安全生产许可", "Work safety licence of a construction enterprise", 20, ["staff_qual", "safety_rules"]),
    ("C", "construction", "房地产开发企业资质（二级）", "Real estate developer qualification (grade II)", 20, ["staff_qual"]),
    ("C", "construction", "燃气经营许可", "Gas business licence", 20, ["premises", "equipment_list", "staff_qual", "safety_rules"]),
    ("C", "construction", "商品房预售许可", "Pre-sale permit for commercial housing", 10, ["land_cert", "planning_permit", "funding_proof"]),
    ("C", "urban", "户外广告设置许可（门头招牌）", "Outdoor advertising permit (shop sign)", 3, ["ad_design", "premises"]),
    ("C", "urban", "户外广告设置许可（大型户外广告设施）", "Outdoor advertising permit (large structure)", 10, ["ad_design", "premises", "structure_safety"]),
    ("C", "urban", "户外广告设置许可（临时性广告）", "Outdoor advertising permit (temporary)", 3, ["ad_design"]),
    ("C", "urban", "城市建筑垃圾处置核准（房屋建筑工程）", "Construction waste disposal approval (building works)", 5, ["transport_contract", "disposal_site"]),
    ("C", "urban", "城市建筑垃圾处置核准（装饰装修工程）", "Construction waste disposal approval (fit-out works)", 3, ["transport_contract", "disposal_site"]),
    ("C", "urban", "城市建筑垃圾运输许可", "Construction waste transport licence", 5, ["equipment_list", "staff_qual"]),
    ("C", "urban", "临时占用城市道路审批", "Approval of temporary occupation of a city road", 3, ["site_photos"]),
    ("C", "urban", "临时占用城市绿地审批", "Approval of temporary occupation of urban green space", 5, ["site_photos"]),
    ("C", "urban", "砍伐、迁移城市树木审批", "Approval of felling or moving urban trees", 5, ["site_photos"]),
    ("C", "urban", "设置大型户外广告及在城市建筑物上悬挂宣传品审批", "Approval of banners on city buildings", 5, ["ad_design", "site_photos"]),
    ("C", "urban", "城市生活垃圾经营性清扫、收集、运输服务许可", "Licence for commercial collection and transport of household waste", 20, ["equipment_list", "staff_qual"]),
]

_CONSTRUCTION_SUBJECTS: list[tuple[str, str, str, int, list[str]]] = [
    ("approval", "建筑工程施工许可（房屋建筑工程）", "Construction permit (building works)", 3, ["land_cert", "planning_permit", "contract_award", "drawings", "quality_commit"]),
    ("approval", "建筑工程施工许可（市政基础设施工程）", "Construction permit (municipal works)", 3, ["land_cert", "planning_permit", "contract_award", "drawings", "quality_commit"]),
    ("approval", "建筑工程施工许可（装饰装修工程）", "Construction permit (fit-out works)", 3, ["contract_award", "quality_commit"]),
    ("approval", "建筑工程施工许可（社会投资简易低风险项目）", "Construction permit (simple low-risk private project)", 1, ["land_cert", "contract_award", "quality_commit"]),
    ("planning", "建设工程规划许可（新建）", "Construction planning permit (new build)", 10, ["land_cert", "drawings", "survey"]),
    ("planning", "建设工程规划许可（改建、扩建）", "Construction planning permit (alteration, extension)", 10, ["land_cert", "drawings", "survey", "property_cert"]),
    ("planning", "建设工程规划许可（市政管线工程）", "Construction planning permit (pipelines)", 10, ["drawings", "survey"]),
    ("planning", "建设用地规划许可", "Land use planning permit", 10, ["land_cert", "survey"]),
    ("planning", "乡村建设规划许可", "Rural construction planning permit", 10, ["land_cert", "drawings"]),
    ("planning", "建设工程规划条件核实", "Verification of planning conditions", 10, ["planning_permit", "survey"]),
    ("construction", "建设工程消防设计审查", "Fire protection design review", 10, ["drawings", "planning_permit"]),
    ("construction", "建设工程消防验收", "Fire protection acceptance", 10, ["drawings", "fire_ok"]),
    ("construction", "建设工程消防验收备案", "Fire protection acceptance filing", 0, ["fire_ok"]),
    ("construction", "人民防空工程竣工验收备案", "Civil air defence works completion filing", 5, ["drawings"]),
    ("construction", "建设工程质量安全监督手续", "Construction quality and safety supervision registration", 1, ["contract_award", "quality_commit"]),
    ("construction", "建设工程竣工联合验收", "Joint completion acceptance of construction projects", 5, ["planning_permit", "fire_ok", "survey"]),
    ("construction", "商品房买卖合同网签备案", "Online filing of a commercial housing sale contract", 0, ["sale_contract"]),
    ("construction", "房屋租赁登记备案", "Housing lease registration", 0, ["property_cert"]),
    ("construction", "物业服务企业项目备案", "Property management project filing", 0, ["biz_licence"]),
    ("construction", "房屋建筑和市政基础设施工程招标文件备案", "Filing of tender documents for building and municipal works", 3, ["contract_award"]),
    ("construction", "依法必须招标项目招标投标情况书面报告备案", "Filing of the tender report of a project that must be tendered", 3, ["contract_award"]),
    ("construction", "直接发包工程备案", "Filing of a directly awarded project", 1, ["contract_award"]),
    ("urban", "挖掘城市道路审批（管线工程）", "Road excavation approval (pipelines)", 5, ["drawings", "commitment"]),
    ("urban", "挖掘城市道路审批（应急抢修）", "Road excavation approval (emergency repair)", 0, ["site_photos"]),
    ("urban", "城市排水设施接入审批", "Approval of connecting to urban drainage", 5, ["layout"]),
    ("urban", "拆除、改动城镇排水与污水处理设施审批", "Approval of removing or altering drainage facilities", 10, ["drawings"]),
    ("urban", "拆除环境卫生设施审批", "Approval of removing sanitation facilities", 10, ["site_photos"]),
    ("urban", "城市桥梁上架设各类市政管线审批", "Approval of laying pipelines on city bridges", 10, ["drawings", "structure_safety"]),
    ("urban", "依附城市道路建设各种管线、杆线等设施审批", "Approval of building utility lines along city roads", 10, ["drawings"]),
    ("urban", "城市夜景亮化设施设置审批", "Approval of night-lighting installations", 5, ["ad_design"]),
]

_CONSTRUCTION_ACTIONS: list[_Action] = [
    ("new", "{zh}", "{en}", -1, False),
    ("change", "{zh}变更", "{en}: change", -1, False),
    ("renew", "{zh}延期", "{en}: extension", 3, False),
    ("cancel", "{zh}注销", "{en}: cancellation", 0, True),
]

# D: social insurances x actions
_INSURANCES: list[tuple[str, str, str]] = [
    ("hrss", "企业职工基本养老保险", "basic pension insurance for employees"),
    ("hrss", "机关事业单位养老保险", "pension insurance for public institutions"),
    ("hrss", "城乡居民基本养老保险", "residents' basic pension insurance"),
    ("hrss", "失业保险", "unemployment insurance"),
    ("hrss", "工伤保险", "work injury insurance"),
    ("medins", "职工基本医疗保险", "employees' basic medical insurance"),
    ("medins", "城乡居民基本医疗保险", "residents' basic medical insurance"),
    ("medins", "生育保险", "maternity insurance"),
    ("medins", "长期护理保险", "long-term care insurance"),
]
_INSURANCE_ACTIONS: list[_Action] = [
    ("new", "{zh}参保登记（单位）", "Employer enrolment in {en}", 0, True),
    ("new", "{zh}参保登记（个人）", "Individual enrolment in {en}", 0, True),
    ("change", "{zh}参保信息变更登记", "Change of enrolment details, {en}", 0, True),
    ("cancel", "{zh}注销登记（停保）", "Stopping {en}", 0, True),
    ("filing", "{zh}缴费基数申报", "Declaring the contribution base, {en}", 0, True),
    ("query", "{zh}个人权益记录查询打印", "Printing the personal record, {en}", 0, True),
    ("filing", "{zh}补缴申请", "Back-payment of {en}", 5, False),
    ("transfer", "{zh}关系转移接续", "Transfer of {en}", 15, False),
]

# D/G: other social matters, explicit: (cat, dept, zh, en, days, instant, keys)
_SOCIAL: list[tuple[str, str, str, str, int, bool, list[str]]] = [
    ("D", "hrss", "工伤认定申请", "Application for work injury determination", 60, False, ["labour_contract", "medical_record"]),
    ("D", "hrss", "劳动能力鉴定申请", "Application for work ability assessment", 60, False, ["medical_record", "photo"]),
    ("D", "hrss", "工伤医疗费用报销", "Reimbursement of work injury medical costs", 20, False, ["hospital_bill", "medical_record", "bank_card"]),
    ("D", "hrss", "一次性伤残补助金申领", "Claim for one-off disability grant (work injury)", 20, False, ["medical_record", "bank_card"]),
    ("D", "hrss", "因工死亡职工供养亲属抚恤金申领", "Survivors' pension for a worker killed at work", 20, False, ["household", "bank_card"]),
    ("D", "hrss", "基本养老金申领（正常退休）", "Claim for basic pension (normal retirement)", 10, False, ["photo", "bank_card"]),
    ("D", "hrss", "个人账户一次性待遇申领", "One-off payment of the individual pension account", 10, False, ["household", "bank_card"]),
    ("D", "hrss", "丧葬补助金和抚恤金申领", "Funeral grant and survivors' pension", 5, False, ["household", "bank_card"]),
    ("D", "hrss", "领取养老金人员待遇资格认证", "Pensioner eligibility verification", 0, True, ["ssc"]),
    ("D", "hrss", "稳岗返还申领", "Job retention refund for employers", 10, False, ["biz_licence"]),
    ("D", "hrss", "技能提升补贴申领", "Skills upgrading subsidy", 10, False, ["staff_qual", "bank_card"]),
    ("D", "hrss", "就业困难人员认定", "Recognition as a person with employment difficulties", 5, False, ["household", "income_proof"]),
    ("D", "hrss", "创业担保贷款申请", "Business start-up guaranteed loan", 10, False, ["biz_licence", "household"]),
    ("D", "hrss", "一次性创业补贴申领", "One-off business start-up subsidy", 10, False, ["biz_licence", "bank_card"]),
    ("D", "hrss", "灵活就业社会保险补贴申领", "Social insurance subsidy for flexible employment", 10, False, ["bank_card"]),
    ("D", "hrss", "高校毕业生就业见习补贴申领", "Internship subsidy for graduates", 10, False, ["labour_contract", "bank_card"]),
    ("D", "hrss", "职业培训补贴申领", "Vocational training subsidy", 10, False, ["staff_qual", "bank_card"]),
    ("D", "hrss", "人力资源服务许可", "Human resources service licence", 20, False, ["premises", "staff_qual"]),
    ("D", "hrss", "劳务派遣经营许可", "Labour dispatch business licence", 20, False, ["premises", "mgmt_rules"]),
    ("D", "hrss", "劳动人事争议仲裁申请", "Labour dispute arbitration application", 5, False, ["labour_contract", "change_proof"]),
    ("D", "hrss", "社会保障卡补换", "Replacement of a social security card", 0, True, ["photo"]),
    ("D", "hrss", "社会保障卡挂失与解挂", "Reporting a lost social security card or cancelling the report", 0, True, []),
    ("D", "hrss", "社会保障卡密码重置", "Resetting a social security card PIN", 0, True, ["ssc"]),
    ("D", "medins", "门诊慢特病待遇认定", "Recognition of outpatient chronic and special diseases", 10, False, ["medical_record", "ssc"]),
    ("D", "medins", "零星医疗费用报销", "Reimbursement of out-of-pocket medical costs", 20, False, ["hospital_bill", "medical_record", "bank_card"]),
    ("D", "medins", "生育医疗费用报销", "Reimbursement of childbirth medical costs", 20, False, ["hospital_bill", "birth_cert", "bank_card"]),
    ("D", "medins", "医保个人账户家庭共济绑定", "Sharing a medical insurance account with family", 0, True, ["household"]),
    ("D", "medins", "医疗救助申请", "Application for medical assistance", 20, False, ["hospital_bill", "income_proof", "bank_card"]),
    ("D", "medins", "定点医药机构申请", "Application to become a designated medical institution", 20, False, ["biz_licence", "staff_qual", "drug_rules"]),
    ("D", "civil", "特困人员救助供养申请", "Application for support of persons in extreme poverty", 20, False, ["household", "asset_auth", "income_proof"]),
    ("D", "civil", "临时救助申请", "Application for temporary assistance", 10, False, ["household", "income_proof", "change_proof"]),
    ("D", "civil", "低收入家庭认定", "Recognition as a low-income family", 20, False, ["household", "asset_auth", "income_proof"]),
    ("D", "civil", "最低生活保障变更", "Change of minimum living allowance", 10, False, ["household", "income_proof"]),
    ("D", "civil", "最低生活保障停止", "Ending the minimum living allowance", 5, False, ["household"]),
    ("D", "civil", "经济困难老年人补贴申请", "Allowance for elderly people in financial difficulty", 10, False, ["household", "income_proof", "bank_card"]),
    ("D", "civil", "困难残疾人生活补贴申请", "Living allowance for disabled people in difficulty", 10, False, ["disability_cert", "household", "bank_card"]),
    ("D", "civil", "重度残疾人护理补贴申请", "Care allowance for severely disabled people", 10, False, ["disability_cert", "household", "bank_card"]),
    ("D", "civil", "基本殡葬服务费用减免", "Fee waiver for basic funeral services", 0, True, ["household", "change_proof"]),
    ("D", "civil", "老年人优待证办理", "Senior citizen concession card", 0, True, ["photo"]),
    ("D", "civil", "养老机构备案", "Filing of an elderly care institution", 0, True, ["premises", "fire_ok", "hygiene_rules"]),
    ("D", "civil", "社会团体成立登记", "Registration of a social organisation", 20, False, ["articles", "premises", "officers"]),
    ("D", "civil", "社会团体变更登记", "Change of registration of a social organisation", 20, False, ["resolution", "change_proof"]),
    ("D", "civil", "社会团体注销登记", "Deregistration of a social organisation", 20, False, ["resolution", "liquidation"]),
    ("D", "civil", "民办非企业单位成立登记", "Registration of a private non-enterprise unit", 20, False, ["articles", "premises", "officers"]),
    ("D", "civil", "民办非企业单位变更登记", "Change of registration of a private non-enterprise unit", 20, False, ["resolution", "change_proof"]),
    ("D", "civil", "民办非企业单位注销登记", "Deregistration of a private non-enterprise unit", 20, False, ["resolution", "liquidation"]),
    ("D", "civil", "离婚登记", "Divorce registration", 30, False, ["household", "marriage", "photo"]),
    ("D", "civil", "补领结婚证", "Reissue of a marriage certificate", 0, True, ["household", "photo"]),
    ("D", "civil", "补领离婚证", "Reissue of a divorce certificate", 0, True, ["household", "photo"]),
    ("D", "civil", "婚姻登记记录证明", "Certificate of marriage registration record", 0, True, ["household"]),
    ("D", "civil", "收养登记", "Adoption registration", 30, False, ["household", "marriage", "medical_record", "income_proof"]),
    ("D", "civil", "地名命名、更名审批", "Approval of naming or renaming a place", 20, False, ["change_proof"]),
    ("D", "disabled", "残疾人证换领", "Renewal of a disability certificate", 20, False, ["disability_cert", "photo"]),
    ("D", "disabled", "残疾人证迁移", "Transfer of a disability certificate", 10, False, ["disability_cert", "household"]),
    ("D", "disabled", "残疾人证补办", "Reissue of a lost disability certificate", 10, False, ["photo", "loss_notice"]),
    ("D", "disabled", "残疾人证注销", "Cancellation of a disability certificate", 5, False, ["disability_cert"]),
    ("D", "disabled", "残疾人辅助器具适配申请", "Application for assistive devices", 15, False, ["disability_cert", "medical_record"]),
    ("D", "disabled", "残疾儿童康复救助申请", "Rehabilitation assistance for disabled children", 15, False, ["household", "medical_record", "birth_cert"]),
    ("D", "disabled", "残疾人机动轮椅车燃油补贴", "Fuel subsidy for disabled people's motorised wheelchairs", 10, False, ["disability_cert", "bank_card"]),
    ("D", "disabled", "残疾人就业保障金减免", "Reduction of the disability employment security fund", 10, False, ["biz_licence"]),
    ("D", "police", "出生登记", "Birth registration (household)", 0, True, ["household", "birth_cert", "marriage"]),
    ("D", "police", "死亡注销户口", "Cancelling the household registration of a deceased person", 0, True, ["household", "change_proof"]),
    ("D", "police", "户口迁入（投靠亲属）", "Household move-in (joining relatives)", 10, False, ["household", "marriage", "residence_proof"]),
    ("D", "police", "户口迁入（购房落户）", "Household move-in (home purchase)", 10, False, ["household", "property_cert"]),
    ("D", "police", "户口迁入（人才引进）", "Household move-in (talent scheme)", 10, False, ["household", "labour_contract", "staff_qual"]),
    ("D", "police", "户口迁入（大中专学生毕业）", "Household move-in (graduates)", 5, False, ["household", "staff_qual"]),
    ("D", "police", "户口迁出", "Household move-out", 0, True, ["household", "transfer_permit"]),
    ("D", "police", "户口簿补领", "Reissue of a household register booklet", 0, True, ["loss_notice"]),
    ("D", "police", "户口登记项目变更更正", "Change or correction of household register entries", 10, False, ["household", "change_proof"]),
    ("D", "police", "居民身份证首次申领", "First application for a resident identity card", 30, False, ["household", "photo"]),
    ("D", "police", "居民身份证换领", "Renewal of a resident identity card", 30, False, ["household", "photo"]),
    ("D", "police", "居民身份证补领", "Replacement of a lost resident identity card", 30, False, ["household", "photo"]),
    ("D", "police", "临时居民身份证申领", "Temporary resident identity card", 0, True, ["household", "photo"]),
    ("D", "police", "居住证签注", "Annual endorsement of a residence permit", 0, True, ["residence_proof"]),
    ("D", "police", "居住证补领、换领", "Reissue or renewal of a residence permit", 7, False, ["photo", "residence_proof"]),
    ("D", "police", "犬只登记延续", "Renewal of dog registration", 0, True, ["dog_vaccine"]),
    ("D", "police", "犬只登记变更（过户）", "Change of dog owner", 0, True, ["dog_vaccine", "dog_photo"]),
    ("D", "police", "犬只登记注销", "Cancellation of dog registration", 0, True, ["change_proof"]),
    ("D", "police", "无犯罪记录证明开具", "Certificate of no criminal record", 3, False, ["household"]),
    ("D", "education", "义务教育阶段入学登记", "Compulsory education enrolment", 10, False, ["household", "birth_cert", "residence_proof"]),
    ("D", "education", "教师资格认定", "Teacher qualification recognition", 20, False, ["photo", "staff_qual", "medical_record"]),
    ("D", "health", "出生医学证明补发", "Reissue of a medical birth certificate", 10, False, ["household", "loss_notice"]),
    ("D", "health", "计划生育家庭特别扶助金申请", "Special assistance for family-planning families", 20, False, ["household", "change_proof", "bank_card"]),
    ("D", "health", "农村部分计划生育家庭奖励扶助", "Reward assistance for rural family-planning families", 20, False, ["household", "bank_card"]),
    ("D", "health", "生育登记", "Birth planning registration", 0, True, ["household", "marriage"]),
    ("G", "fund", "住房公积金提取（退休）", "Housing provident fund withdrawal (retirement)", 0, True, ["fund_card", "change_proof"]),
    ("G", "fund", "住房公积金提取（偿还住房贷款）", "Housing provident fund withdrawal (loan repayment)", 0, True, ["fund_card", "mortgage_contract"]),
    ("G", "fund", "住房公积金提取（离职销户）", "Housing provident fund withdrawal (leaving the job)", 3, False, ["fund_card", "separation_proof"]),
    ("G", "fund", "住房公积金提取（重大疾病）", "Housing provident fund withdrawal (serious illness)", 3, False, ["fund_card", "medical_record", "hospital_bill"]),
    ("G", "fund", "住房公积金提取（既有住宅加装电梯）", "Housing provident fund withdrawal (adding a lift)", 3, False, ["fund_card", "property_cert"]),
    ("G", "fund", "住房公积金个人账户设立", "Opening an individual housing provident fund account", 0, True, ["labour_contract"]),
    ("G", "fund", "住房公积金单位缴存登记", "Employer registration for housing provident fund", 0, True, ["biz_licence"]),
    ("G", "fund", "住房公积金个人住房贷款申请", "Housing provident fund mortgage application", 10, False, ["house_purchase", "marriage", "income_proof"]),
    ("G", "fund", "住房公积金缴存证明开具", "Housing provident fund contribution certificate", 0, True, []),
    ("G", "fund", "灵活就业人员住房公积金缴存登记", "Housing provident fund enrolment of flexibly employed persons", 0, True, ["bank_card"]),
    ("G", "approval", "开办餐馆“一件事”", "Opening a restaurant (one-stop bundle)", 5, False, ["premises", "layout", "food_rules", "health_cert", "fire_ok"]),
    ("G", "approval", "开办便利店“一件事”", "Opening a convenience store (one-stop bundle)", 3, False, ["premises", "food_rules", "health_cert"]),
    ("G", "approval", "开办药店“一件事”", "Opening a pharmacy (one-stop bundle)", 15, False, ["premises", "layout", "pharmacist", "drug_rules"]),
    ("G", "approval", "开办美容美发店“一件事”", "Opening a beauty or hair salon (one-stop bundle)", 5, False, ["premises", "layout", "hygiene_report", "health_cert"]),
    ("G", "approval", "开办宾馆“一件事”", "Opening a hotel (one-stop bundle)", 10, False, ["premises", "layout", "fire_ok", "hygiene_report"]),
    ("G", "approval", "开办健身房“一件事”", "Opening a gym (one-stop bundle)", 5, False, ["premises", "fire_ok"]),
    ("G", "approval", "开办民办培训学校“一件事”", "Opening a private training school (one-stop bundle)", 20, False, ["premises", "fire_ok", "staff_qual"]),
    ("G", "approval", "企业开办“一件事”", "Starting a business (one-stop bundle)", 1, False, ["articles", "premises", "name_notice", "finance_staff"]),
    ("G", "approval", "企业注销“一件事”", "Closing a business (one-stop bundle)", 3, False, ["resolution", "liquidation", "clearance"]),
    ("G", "approval", "新生儿出生“一件事”", "Birth of a child (one-stop bundle)", 0, True, ["household", "birth_cert", "marriage"]),
    ("G", "approval", "退休“一件事”", "Retirement (one-stop bundle)", 10, False, ["photo", "bank_card"]),
    ("G", "approval", "身后“一件事”", "Formalities after a death (one-stop bundle)", 5, False, ["household", "change_proof", "bank_card"]),
    ("G", "approval", "员工录用“一件事”", "Hiring an employee (one-stop bundle)", 0, True, ["labour_contract", "biz_licence"]),
    ("G", "approval", "残疾人服务“一件事”", "Services for disabled people (one-stop bundle)", 20, False, ["household", "photo", "medical_record"]),
    ("G", "approval", "二手房转移登记及水电气联动过户“一件事”", "Resale home transfer with utility account transfer (one-stop bundle)", 1, False, ["property_cert", "sale_contract", "tax_paid"]),
    ("G", "approval", "军人退役“一件事”", "Discharge from military service (one-stop bundle)", 10, False, ["household", "change_proof"]),
    ("G", "approval", "公民婚育“一件事”", "Marriage and childbirth (one-stop bundle)", 0, True, ["household", "photo"]),
    ("G", "approval", "信用修复“一件事”", "Credit restoration (one-stop bundle)", 5, False, ["biz_licence", "change_proof"]),
    ("G", "approval", "政务服务事项咨询与帮办代办", "Consultation and assisted handling of government services", 0, True, []),
    ("G", "approval", "证明材料邮寄送达申请", "Request to mail out documents and certificates", 0, True, ["residence_proof"]),
    ("G", "approval", "政务服务“好差评”差评申诉", "Appeal against a bad rating", 5, False, ["change_proof"]),
]

# E: rights x registration types
_RIGHTS: list[tuple[str, str]] = [
    ("国有建设用地使用权", "state construction land use right"),
    ("国有建设用地使用权及房屋所有权", "state construction land use right and house ownership"),
    ("宅基地使用权及房屋所有权", "homestead use right and house ownership"),
    ("集体建设用地使用权", "collective construction land use right"),
    ("集体建设用地使用权及建筑物所有权", "collective land use right and building ownership"),
    ("土地承包经营权", "land contract management right"),
    ("林权", "forest right"),
    ("居住权", "right of habitation"),
]
_RIGHT_ACTIONS: list[_Action] = [
    ("new", "{zh}首次登记", "First registration of {en}", 5, False),
    ("change", "{zh}变更登记", "Change registration of {en}", 1, False),
    ("transfer", "{zh}转移登记（买卖）", "Transfer registration of {en} (sale)", 1, False),
    ("transfer", "{zh}转移登记（继承、受遗赠）", "Transfer registration of {en} (inheritance)", 5, False),
    ("transfer", "{zh}转移登记（赠与）", "Transfer registration of {en} (gift)", 1, False),
    ("transfer", "{zh}转移登记（分割、合并）", "Transfer registration of {en} (division or merger)", 3, False),
    ("transfer", "{zh}转移登记（法院判决、仲裁）", "Transfer registration of {en} (court or arbitration)", 3, False),
    ("cancel", "{zh}注销登记", "Cancellation registration of {en}", 1, False),
    ("correct", "{zh}更正登记", "Correction registration of {en}", 10, False),
    ("reissue", "{zh}不动产权证书补发、换发", "Reissue of the title certificate for {en}", 5, False),
]
_REAL_ESTATE_OTHER: list[tuple[str, str, int, bool, list[str]]] = [
    ("不动产抵押权变更登记", "Change registration of a mortgage", 1, False, ["property_cert", "mortgage_contract", "creditor_id"]),
    ("不动产抵押权转移登记", "Transfer registration of a mortgage", 1, False, ["property_cert", "mortgage_contract", "creditor_id"]),
    ("最高额抵押权首次登记", "First registration of a maximum-amount mortgage", 1, False, ["property_cert", "mortgage_contract", "creditor_id"]),
    ("在建建筑物抵押权登记", "Mortgage registration of a building under construction", 3, False, ["planning_permit", "mortgage_contract", "creditor_id"]),
    ("预购商品房抵押预告登记", "Advance notice of a mortgage on a pre-sale home", 1, False, ["sale_contract", "mortgage_contract", "creditor_id"]),
    ("预告登记注销", "Cancellation of an advance notice registration", 1, True, ["change_proof"]),
    ("预告登记变更", "Change of an advance notice registration", 1, False, ["sale_contract", "change_proof"]),
    ("异议登记", "Objection registration", 1, False, ["change_proof"]),
    ("异议登记注销", "Cancellation of an objection registration", 1, False, ["change_proof"]),
    ("查封登记", "Seizure registration", 0, True, ["change_proof"]),
    ("解除查封登记", "Release of seizure registration", 0, True, ["change_proof"]),
    ("地役权首次登记", "First registration of an easement", 5, False, ["change_proof", "survey"]),
    ("地役权变更、转移、注销登记", "Change, transfer or cancellation of an easement", 5, False, ["change_proof"]),
    ("不动产登记资料查询（权利人）", "Search of real estate records (by the right holder)", 0, True, []),
    ("不动产登记资料查询（利害关系人）", "Search of real estate records (by an interested party)", 0, True, ["change_proof"]),
    ("无房证明（不动产登记信息查询结果）开具", "Certificate of owning no property", 0, True, []),
    ("新建商品房首次登记", "First registration of new commercial housing", 5, False, ["land_cert", "survey", "planning_permit"]),
    ("新建商品房转移登记（交房即交证）", "Transfer registration of a new home (title at handover)", 0, True, ["sale_contract", "tax_paid"]),
    ("不动产登记证明补发", "Reissue of a real estate registration certificate", 5, False, ["loss_notice"]),
    ("不动产继承公证前置取消后继承登记", "Inheritance registration without notarisation", 5, False, ["household", "change_proof"]),
]

# F: taxes x actions
_TAXES: list[tuple[str, str]] = [
    ("增值税", "VAT"), ("消费税", "consumption tax"), ("企业所得税", "corporate income tax"),
    ("个人所得税（经营所得）", "individual income tax (business income)"), ("印花税", "stamp duty"),
    ("房产税", "property tax"), ("城镇土地使用税", "urban land use tax"), ("土地增值税", "land appreciation tax"),
    ("契税", "deed tax"), ("车船税", "vehicle and vessel tax"), ("资源税", "resource tax"),
    ("环境保护税", "environmental protection tax"), ("耕地占用税", "farmland occupation tax"),
    ("城市维护建设税", "urban maintenance and construction tax"),
]
_TAX_ACTIONS: list[_Action] = [
    ("filing", "{zh}纳税申报", "{en} return", 0, True),
    ("change", "{zh}更正申报", "Correction of a {en} return", 0, True),
    ("filing", "{zh}延期申报申请", "Extension for filing a {en} return", 5, False),
    ("filing", "{zh}延期缴纳申请", "Deferred payment of {en}", 20, False),
    ("filing", "{zh}减免税备案", "Filing of a {en} reduction or exemption", 0, True),
    ("refund", "{zh}多缴税款退还", "Refund of overpaid {en}", 10, False),
]
_TAX_OTHER: list[tuple[str, str, int, bool, list[str]]] = [
    ("增值税一般纳税人登记", "Registration as a general VAT taxpayer", 0, True, ["biz_licence"]),
    ("跨区域涉税事项报告", "Report of cross-region tax matters", 0, True, ["biz_licence", "change_proof"]),
    ("跨区域涉税事项报验", "Check-in of cross-region tax matters", 0, True, ["biz_licence"]),
    ("税务登记信息变更", "Change of tax registration details", 0, True, ["biz_licence", "change_proof"]),
    ("停业登记", "Suspension of business (tax)", 0, True, ["biz_licence"]),
    ("复业登记", "Resumption of business (tax)", 0, True, ["biz_licence"]),
    ("发票票种核定", "Approval of invoice types", 0, True, ["biz_licence", "invoice_book"]),
    ("增值税专用发票（增值税税控系统）最高开票限额审批", "Approval of the VAT special invoice ceiling", 10, False, ["biz_licence", "change_proof"]),
    ("发票缴销", "Cancellation and return of invoices", 0, True, ["invoice_book"]),
    ("发票遗失、损毁报告", "Report of lost or damaged invoices", 0, True, ["loss_notice"]),
    ("代开增值税专用发票", "Issuing a VAT special invoice on behalf of the taxpayer", 0, True, ["change_proof"]),
    ("出口退（免）税备案", "Export tax refund (exemption) filing", 0, True, ["biz_licence", "change_proof"]),
    ("出口退（免）税申报", "Export tax refund (exemption) claim", 10, False, ["invoice_book", "change_proof"]),
    ("增值税留抵退税申请", "Refund of excess input VAT credits", 10, False, ["change_proof"]),
    ("纳税信用复评", "Review of tax credit rating", 15, False, ["change_proof"]),
    ("纳税信用补评", "Supplementary tax credit rating", 15, False, ["change_proof"]),
    ("纳税信用修复", "Restoring tax credit", 15, False, ["change_proof"]),
    ("涉税信息查询", "Tax information enquiry", 0, True, []),
    ("个人所得税纳税记录开具", "Individual income tax payment record", 0, True, []),
    ("二手房交易税费申报", "Tax declaration on a resale home transaction", 0, True, ["property_cert", "sale_contract"]),
    ("个人出租房屋税费申报", "Tax declaration on renting out a home", 0, True, ["property_cert", "change_proof"]),
    ("社会保险费缴费登记", "Social insurance contribution registration (tax)", 0, True, ["biz_licence"]),
    ("文化事业建设费申报", "Culture development fee return", 0, True, []),
    ("残疾人就业保障金申报", "Disability employment security fund return", 0, True, []),
    ("车辆购置税申报", "Vehicle purchase tax return", 0, True, ["invoice_book", "change_proof"]),
    ("财务会计制度及核算软件备案", "Filing of accounting rules and software", 0, True, ["change_proof"]),
    ("存款账户账号报告", "Report of bank account numbers", 0, True, ["change_proof"]),
    ("银税三方（委托）划缴协议", "Tripartite tax payment agreement with a bank", 0, True, ["change_proof"]),
    ("非正常户解除", "Lifting abnormal taxpayer status", 0, True, ["biz_licence"]),
    ("税务行政许可（印制发票的企业审批）", "Approval of invoice printing enterprises", 20, False, ["biz_licence", "equipment_list"]),
]

# Matters that also exist as a cross-province service (跨省通办) at the G windows.
_CROSS_REGION_OF = [
    "个体工商户变更登记", "个体工商户注销登记", "有限责任公司设立登记", "营业执照补领、换发",
    "城乡居民基本养老保险参保登记", "城乡居民基本医疗保险参保登记", "生育津贴申领", "失业保险金申领",
    "就业登记", "社会保障卡申领", "结婚登记", "残疾人证办理", "居民身份证换领", "居民身份证补领",
    "出生登记", "户口迁入（投靠亲属）", "无犯罪记录证明开具", "居住证办理", "门诊慢特病待遇认定",
    "零星医疗费用报销", "基本养老金申领（正常退休）", "领取养老金人员待遇资格认证",
    "职工基本医疗保险关系转移接续", "失业保险关系转移接续", "住房公积金缴存证明开具",
    "住房公积金提取（购买自住住房）", "住房公积金提取（离职销户）", "不动产登记资料查询（权利人）",
    "个人所得税纳税记录开具", "开具税收完税证明", "教师资格认定", "婚姻登记记录证明",
    "工伤医疗费用报销", "补领结婚证", "职业培训补贴申领", "食品经营许可（新办）",
]


_FORM_LABEL = {
    "new": ("申请表", "application form"), "change": ("变更申请表", "change application form"),
    "renew": ("延续申请表", "renewal application form"), "cancel": ("注销申请表", "cancellation application form"),
    "reissue": ("补办申请表", "reissue application form"), "filing": ("申报（备案）表", "declaration (filing) form"),
    "query": ("查询申请表", "enquiry form"), "transfer": ("转移申请表", "transfer application form"),
    "correct": ("更正申请书", "correction application"), "refund": ("退税申请表", "refund application form"),
}

# Subjects that an individual holds (a practising licence), not a business: no business licence.
_PERSONAL_PERMITS = ("医师执业注册", "护士执业注册")


def _base(name: str) -> str:
    """A subject without its parenthesised sub-type: 食品经营许可（单位食堂·学校） -> 食品经营许可."""
    return name.split("（", 1)[0]


def _own_form(name_zh: str, name_en: str) -> tuple[str, str]:
    """The form named after the matter itself, as guides name it: 资源税延期缴纳申请表, 印花税纳税申报表."""
    base = _base(name_zh)
    zh = f"{base}表" if base.endswith(("申请", "申领", "申报")) else f"{base}申请表"
    return zh, f"{name_en.split(' (', 1)[0]}: application form"


def _action_items(kind: str, subject_zh: str, subject_en: str, extras: list[str],
                  business: bool, form: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The checklist a derived matter gets: what its action needs plus what its subject needs."""
    if form is None:
        label_zh, label_en = _FORM_LABEL[kind]
        form = (f"{_base(subject_zh)}{label_zh}", f"{_base(subject_en)}: {label_en}")
    if kind != "change":  # outside a change the same item is just "supporting documents"
        extras = ["supporting" if k == "change_proof" else k for k in extras]
    items = [_form(*form)]
    if business:
        items.append(_it("biz_licence"))
        items.append(_it("id_card", name_zh="法定代表人（负责人）身份证明", name_en="ID of the legal representative (person in charge)"))
    else:
        items.append(_it("id_card"))
    if kind == "new":
        items += [_it(k) for k in extras]
    elif kind == "change":
        if business:
            items.append(_it("old_cert", name_zh="原许可证件正、副本", name_en="Current permit (original and duplicate)"))
        items.append(_it("change_proof"))
        items += [_it(k, "optional") for k in extras[:2]]
    elif kind == "renew":
        items.append(_it("old_cert", name_zh="原许可证件正、副本", name_en="Current permit (original and duplicate)"))
        items.append(_it("commitment", name_zh="许可条件未发生变化的承诺书", name_en="Commitment that the permit conditions are unchanged"))
        items += [_it(k, "accepted_pending" if k in ("health_cert", "hygiene_report") else "optional") for k in extras[:2]]
    elif kind == "cancel":
        items.append(_it("old_cert", "required" if business else "optional"))
        items += [_it(k, "optional") for k in extras[:1]]
    elif kind == "reissue":
        items.append(_it("loss_notice", "optional", notes_zh="证件遗失的提交；损毁的交回原证", notes_en="If lost; if damaged, return the damaged one"))
        items += [_it(k) for k in extras if k == "photo"]
    elif kind == "transfer":
        items.append(_it("transfer_cert"))
        items += [_it(k) for k in extras]
    elif kind == "correct":
        items.append(_it("change_proof", name_zh="证实登记确有错误的材料", name_en="Evidence that the register is wrong"))
        items += [_it(k) for k in extras]
    elif kind == "refund":
        items.append(_it("tax_paid", name_zh="原完税凭证", name_en="Original payment receipts", e_licence=True))
        items.append(_it("bank_card", name_zh="退税账户信息", name_en="Refund bank account details", original_required=False))
        items += [_it(k, "optional") for k in extras]
    else:  # filing, query
        items += [_it(k, "optional" if k == "fin_statements" else "required") for k in extras]
    return items + _agent()


# Who decides a change, by kind of entity (the resolution item's real name in each guide).
_RESOLUTION_BY_ENTITY: list[tuple[str, str, str]] = [
    ("分公司", "隶属公司出具的决定", "Decision of the parent company"),
    ("分支机构", "隶属企业出具的决定", "Decision of the parent enterprise"),
    ("合伙企业", "全体合伙人签署的决定书", "Decision signed by all partners"),
    ("合作社", "成员（代表）大会决议", "Resolution of the members' (representatives') meeting"),
    ("个人独资企业", "投资人决定", "Decision of the investor"),
    ("常驻代表机构", "外国企业出具的决定", "Decision of the foreign enterprise"),
    ("非公司企业法人", "出资人或主管部门决定", "Decision of the investor or supervising body"),
    ("集体所有制企业", "职工（代表）大会或主管部门决定", "Decision of the workers' congress or supervising body"),
    ("个体工商户", "经营者签署的变更申请", "Change request signed by the operator"),
]


def _reg_items(act: str, entity_zh: str, entity_en: str) -> list[dict[str, Any]]:
    """Checklists of business registration actions (A), after the SAMR registration guides."""
    kind = _REG_ACTIONS[act][0]
    label_zh, label_en = {
        "new": ("登记（备案）申请书", "registration application"), "change": ("变更登记申请书", "change registration application"),
        "filing": ("备案申请书", "filing application"), "cancel": ("注销登记申请书", "deregistration application"),
        "reissue": ("营业执照补领（换发）申请书", "licence reissue application")}[kind]
    items = [_form(f"{_base(entity_zh)}{label_zh}", f"{label_en[0].upper()}{label_en[1:]} ({entity_en})")]
    keys: list[tuple[str, str]] = {
        "set": [("articles", "required"), ("shareholders", "required"), ("officers", "required"),
                ("premises", "accepted_pending"), ("name_notice", "required")],
        "name": [("resolution", "required"), ("name_notice", "required"), ("biz_licence", "required")],
        "domicile": [("resolution", "required"), ("premises", "required"), ("biz_licence", "required")],
        "head": [("resolution", "required"), ("officers", "required"), ("biz_licence", "required")],
        "scope": [("resolution", "required"), ("biz_licence", "required"), ("change_proof", "optional")],
        "capital": [("resolution", "required"), ("change_proof", "required"), ("biz_licence", "required")],
        "members": [("resolution", "required"), ("shareholders", "required"), ("change_proof", "required"), ("biz_licence", "required")],
        "charter": [("articles", "required"), ("resolution", "required")],
        "officers": [("officers", "required"), ("resolution", "required")],
        "liquidation": [("resolution", "required"), ("officers", "required")],
        "cancel": [("resolution", "required"), ("liquidation", "required"), ("clearance", "required"), ("old_cert", "required")],
        "simple_cancel": [("commitment", "required"), ("old_cert", "required")],
        "reissue": [("loss_notice", "optional"), ("old_cert", "optional"), ("id_card", "required")],
    }[act]
    overrides: dict[str, dict[str, Any]] = {}
    for marker, rzh, ren in _RESOLUTION_BY_ENTITY:
        if marker in entity_zh:
            overrides["resolution"] = {"name_zh": rzh, "name_en": ren}
            break
    if "常驻代表机构" in entity_zh:  # a representative office holds a registration certificate
        overrides["biz_licence"] = {"name_zh": "外国企业常驻代表机构登记证", "name_en": "Registration certificate of the representative office"}
    items += [_it(k, req, **overrides.get(k, {})) for k, req in keys]
    return items + _agent()


def _matter(cat: str, dept: str, zh: str, en: str, days: int, instant: bool, cross: bool,
            items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"category": cat, "dept": dept, "name_zh": zh, "name_en": en, "time_limit_days": days,
            "instant": instant, "cross_region": cross, "items": items}


def _permit_actions(subject_zh: str) -> list[_Action]:
    """A filing (备案) is made, changed and cancelled, never renewed or reissued; it has no （新办）."""
    if "备案" in _base(subject_zh):
        return [("new", "{zh}", "{en}", -1, False), _PERMIT_ACTIONS[1], _PERMIT_ACTIONS[3]]
    return _PERMIT_ACTIONS


def _construction_actions(subject_zh: str) -> list[_Action]:
    """Permits and licences know every action; approvals are changed or extended; filings only changed."""
    if "许可" in subject_zh:
        return _CONSTRUCTION_ACTIONS
    if "审批" in subject_zh:
        return _CONSTRUCTION_ACTIONS[:3]
    return _CONSTRUCTION_ACTIONS[:2]


def _derived_pool() -> list[dict[str, Any]]:
    """Every derived matter candidate, in a fixed order (the seed only chooses among them)."""
    pool: list[dict[str, Any]] = []
    for ent_zh, ent_en, acts in _ENTITIES:
        for act in acts:
            _kind, fzh, fen, days, instant = _REG_ACTIONS[act]
            pool.append(_matter("A", "approval", fzh.format(zh=ent_zh), fen.format(en=ent_en), days, instant, False,
                                _reg_items(act, ent_zh, ent_en)))
    for cat, dept, szh, sen, days, extras in _PERMITS:
        business = not szh.startswith(_PERSONAL_PERMITS)
        for kind, fzh, fen, adays, instant in _permit_actions(szh):
            d = days if adays < 0 else adays
            pool.append(_matter(cat, dept, fzh.format(zh=szh), fen.format(en=sen), d, instant or d == 0, False,
                                _action_items(kind, szh, sen, extras, business=business)))
    for dept, szh, sen, days, extras in _CONSTRUCTION_SUBJECTS:
        for kind, fzh, fen, adays, instant in _construction_actions(szh):
            d = days if adays < 0 else adays
            pool.append(_matter("C", dept, fzh.format(zh=szh), fen.format(en=sen), d, instant or d == 0, False,
                                _action_items(kind, szh, sen, extras, business=True)))
    for dept, izh, ien in _INSURANCES:
        for kind, fzh, fen, days, instant in _INSURANCE_ACTIONS:
            zh, en = fzh.format(zh=izh), fen.format(en=ien)
            employer = "（单位）" in zh
            pool.append(_matter("D", dept, zh, en[0].upper() + en[1:], days, instant, False,
                                _action_items(kind, zh, en, ["ssc"] if not employer else [], business=employer,
                                              form=_own_form(zh, en))))
    for cat, dept, zh, en, days, instant, extras in _SOCIAL:
        pool.append(_matter(cat, dept, zh, en, days, instant, False,
                            _action_items("new", zh, en, extras, business=False, form=_own_form(zh, en))))
    realestate_form = ("不动产登记申请书", "Real estate registration application")
    for rzh, ren in _RIGHTS:
        for kind, fzh, fen, days, instant in _RIGHT_ACTIONS:
            extras = {"new": ["land_cert", "survey"], "change": ["property_cert", "change_proof"],
                      "transfer": ["property_cert", "tax_paid"], "cancel": ["property_cert"],
                      "correct": ["property_cert"], "reissue": ["loss_notice"]}[kind]
            if kind == "transfer":  # a real estate transfer needs no insurance transfer letter
                kind = "new"
            if "继承" in fzh:
                extras = [*extras, "household"]
            pool.append(_matter("E", "realestate", fzh.format(zh=rzh), fen.format(en=ren), days, instant, False,
                                _action_items(kind, "不动产登记", "Real estate registration", extras, business=False,
                                              form=realestate_form)))
    for zh, en, days, instant, extras in _REAL_ESTATE_OTHER:
        pool.append(_matter("E", "realestate", zh, en, days, instant, False,
                            _action_items("new", "不动产登记", "Real estate registration", extras, business=False,
                                          form=realestate_form)))
    for tzh, ten in _TAXES:
        for kind, fzh, fen, days, instant in _TAX_ACTIONS:
            zh, en = fzh.format(zh=tzh), fen.format(en=ten)
            en = en[0].upper() + en[1:]
            extras = {"filing": ["fin_statements"] if "纳税申报" in zh else ["change_proof"],
                      "change": ["fin_statements"], "refund": ["change_proof"]}[kind]
            pool.append(_matter("F", "tax", zh, en, days, instant, False,
                                _action_items(kind, tzh, ten, extras, business=False, form=_own_form(zh, en))))
    for zh, en, days, instant, extras in _TAX_OTHER:
        pool.append(_matter("F", "tax", zh, en, days, instant, False,
                            _action_items("filing", zh, en, extras, business=False, form=_own_form(zh, en))))
    return pool


# How many matters each category has in the demo (sums to 823, like the real hall's catalogue).
CATEGORY_QUOTAS = {"A": 120, "B": 200, "C": 120, "D": 165, "E": 75, "F": 85, "G": 58}


def _finish(raw: dict[str, Any], code: str) -> dict[str, Any]:
    """A raw matter as the contract's Matter: department names, stable item ids m1, m2 ..."""
    dzh, den = DEPARTMENTS[raw["dept"]]
    seen: set[tuple[str, str]] = set()
    checklist: list[dict[str, Any]] = []
    for item in raw["items"]:
        ident = (item["key"], item["name_zh"])
        if ident in seen:  # a subject's extras may repeat an item its action already lists
            continue
        seen.add(ident)
        entry = {k: v for k, v in item.items() if k != "key"}
        checklist.append({"id": f"m{len(checklist) + 1}", **entry})
    return {
        "code": code, "name_zh": raw["name_zh"], "name_en": raw["name_en"],
        "department_zh": dzh, "department_en": den, "category": raw["category"],
        "time_limit_days": raw["time_limit_days"], "instant": raw["instant"],
        "cross_region": raw["cross_region"], "version": 1, "deleted": False, "checklist": checklist,
    }


def _build_matters(seed: int) -> list[dict[str, Any]]:
    assert sum(CATEGORY_QUOTAS.values()) == MATTER_COUNT
    rng = random.Random(seed)
    hand = _hand_written()
    names = {m["name_zh"] for m in hand}
    names_en = {m["name_en"] for m in hand}
    pool: list[dict[str, Any]] = []
    for m in _derived_pool():
        # a derived matter that a hand-written guide already covers is dropped, in either language
        if m["name_zh"] not in names and m["name_en"] not in names_en:
            names.add(m["name_zh"])
            names_en.add(m["name_en"])
            pool.append(m)
    by_name = {m["name_zh"]: m for m in hand + pool}
    for src in _CROSS_REGION_OF:
        m = by_name[src]
        zh = f"{src}（跨省通办）"
        if zh not in names:
            names.add(zh)
            names_en.add(f"{m['name_en']} (cross-province)")
            pool.append(_matter("G", m["dept"], zh, f"{m['name_en']} (cross-province)", m["time_limit_days"],
                                m["instant"], True, m["items"]))
    matters: list[dict[str, Any]] = []
    for cat in CATEGORY_QUOTAS:
        mine = [m for m in hand if m["category"] == cat]
        candidates = [m for m in pool if m["category"] == cat]
        need = CATEGORY_QUOTAS[cat] - len(mine)
        if not 0 <= need <= len(candidates):
            raise ValueError(f"category {cat}: {len(mine)} hand-written, {len(candidates)} derived, quota {CATEGORY_QUOTAS[cat]}")
        chosen = sorted(rng.sample(range(len(candidates)), need))
        for n, raw in enumerate(mine + [candidates[i] for i in chosen], start=1):
            matters.append(_finish(raw, f"{REGION_CODE}-{cat}-{n:04d}"))
    return matters


HAND_WRITTEN_COUNT = len(_hand_written())


def build_demo_hall(seed: int = 1) -> DemoHall:
    """The demo hall; the same seed always gives the same hall (fresh copies, safe to mutate)."""
    return DemoHall(
        hall=dict(HALL),
        categories=[dict(c) for c in CATEGORIES],
        windows=[{**w, "categories": list(w["categories"])} for w in WINDOWS],
        staff=[dict(s) for s in STAFF],
        pause_reasons=[dict(p) for p in PAUSE_REASONS],
        rating_reasons={"version": RATING_REASONS["version"],
                        "reasons": [dict(r) for r in RATING_REASONS["reasons"]]},
        matters=_build_matters(seed),
    )


# --------------------------------------------------------------------------------------------
# Staff photos
# --------------------------------------------------------------------------------------------

# Muted, high-contrast backgrounds for white text (Material palette, 700 shades).
_AVATAR_COLOURS = [
    (0xD3, 0x2F, 0x2F), (0xC2, 0x18, 0x5B), (0x7B, 0x1F, 0xA2), (0x51, 0x2D, 0xA8),
    (0x30, 0x3F, 0x9F), (0x19, 0x76, 0xD2), (0x02, 0x77, 0xBD), (0x00, 0x83, 0x8F),
    (0x00, 0x79, 0x6B), (0x38, 0x8E, 0x3C), (0x68, 0x9F, 0x38), (0xE6, 0x4A, 0x19),
    (0x5D, 0x40, 0x37), (0x45, 0x5A, 0x64),
]


@lru_cache(maxsize=1)
def _cjk_font_path() -> str | None:
    for path in CJK_FONT_PATHS:
        if Path(path).is_file():
            return path
    return None


def _initials(staff_no: str, name_zh: str) -> str:
    """Latin initials when no CJK font exists: from the demo roster's pinyin, else pypinyin."""
    for s in STAFF:
        if s["staff_no"] == staff_no and s["name_zh"] == name_zh:
            parts = str(s["name_en"]).split()
            return (parts[0][0] + (parts[1][0] if len(parts) > 1 else "")).upper()
    try:
        from pypinyin import lazy_pinyin

        syllables = lazy_pinyin(name_zh[:2])
        letters = "".join(p[0] for p in syllables if p and p[0].isascii() and p[0].isalpha())
        if letters:
            return letters.upper()
    except ImportError:  # pypinyin is a client dependency; the server may run without it
        pass
    return staff_no[-2:] or "?"


def avatar_png(staff_no: str, name_zh: str, size: int = 256) -> bytes:
    """A staff photo stand-in: the surname on a disc whose colour is fixed by the staff number."""
    from PIL import Image, ImageDraw, ImageFont

    if size < 16:
        raise ValueError(f"avatar size must be at least 16 px, got {size}")
    digest = hashlib.sha256(staff_no.encode("utf-8")).digest()
    colour = _AVATAR_COLOURS[digest[0] % len(_AVATAR_COLOURS)]
    # Drawn at 4x and scaled down: Pillow's ellipse has no anti-aliasing of its own.
    big = size * 4
    img = Image.new("RGB", (big, big), (0xF4, 0xF5, 0xF7))
    draw = ImageDraw.Draw(img)
    draw.ellipse((0, 0, big - 1, big - 1), fill=colour)
    font_path = _cjk_font_path()
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    text = name_zh.strip()[:1]
    if font_path and text:
        font = ImageFont.truetype(font_path, int(big * 0.5))
    else:
        text = _initials(staff_no, name_zh)
        font = ImageFont.load_default(size=int(big * (0.42 if len(text) > 1 else 0.5)))
    draw.text((big / 2, big / 2), text, fill=(255, 255, 255), font=font, anchor="mm")
    out = io.BytesIO()
    img.resize((size, size), Image.Resampling.LANCZOS).save(out, format="PNG", optimize=True)
    return out.getvalue()
