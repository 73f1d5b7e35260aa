"""FIX 4.4 tag numbers and enumerated values used by the gateway (facts from the FIX 4.4 spec).

Tags are plain ``int`` constants and values plain ``str`` constants: messages are built and
read as ``(tag, value)`` pairs, so there is nothing to look up at run time.
"""

from __future__ import annotations

from typing import Final

BEGIN_STRING: Final = "FIX.4.4"

# --- standard header and trailer ---------------------------------------------------------------
BeginString: Final = 8
BodyLength: Final = 9
CheckSum: Final = 10
MsgSeqNum: Final = 34
MsgType: Final = 35
PossDupFlag: Final = 43
SenderCompID: Final = 49
SendingTime: Final = 52
TargetCompID: Final = 56
PossResend: Final = 97
OrigSendingTime: Final = 122

# --- session messages ---------------------------------------------------------------------------
BeginSeqNo: Final = 7
EndSeqNo: Final = 16
NewSeqNo: Final = 36
RefSeqNum: Final = 45
Text: Final = 58
EncryptMethod: Final = 98
HeartBtInt: Final = 108
TestReqID: Final = 112
GapFillFlag: Final = 123
ResetSeqNumFlag: Final = 141
RefTagID: Final = 371
RefMsgType: Final = 372
SessionRejectReason: Final = 373
BusinessRejectRefID: Final = 379
BusinessRejectReason: Final = 380
Username: Final = 553
Password: Final = 554

# --- News (the venue's notice of a new epoch) ---------------------------------------------------
LinesOfText: Final = 33
Headline: Final = 148

# --- orders and executions ----------------------------------------------------------------------
Account: Final = 1
AvgPx: Final = 6
ClOrdID: Final = 11
CumQty: Final = 14
Currency: Final = 15
ExecID: Final = 17
ExecInst: Final = 18
HandlInst: Final = 21
SecurityIDSource: Final = 22
LastPx: Final = 31
LastQty: Final = 32
OrderID: Final = 37
OrderQty: Final = 38
OrdStatus: Final = 39
OrdType: Final = 40
OrigClOrdID: Final = 41
Price: Final = 44
SecurityID: Final = 48
Side: Final = 54
Symbol: Final = 55
TimeInForce: Final = 59
TransactTime: Final = 60
ExecRefID: Final = 19
StopPx: Final = 99
OrdRejReason: Final = 103
MinQty: Final = 110
MaxFloor: Final = 111
ExpireTime: Final = 126
ExecType: Final = 150
LeavesQty: Final = 151
TradeDate: Final = 75
CxlRejReason: Final = 102
CxlRejResponseTo: Final = 434
ExecRestatementReason: Final = 378
MassCancelRequestType: Final = 530
MassCancelResponse: Final = 531
MassCancelRejectReason: Final = 532
TotalAffectedOrders: Final = 533
OrdStatusReqID: Final = 790
TradeID: Final = 1003
TrdMatchID: Final = 880
SecondaryOrderID: Final = 198
PegOffsetValue: Final = 211
PegPriceType: Final = 1094
DisplayQty: Final = 1138
ContraBroker: Final = 375
NoContraBrokers: Final = 382
SelfMatchPreventionInstruction: Final = 2964  # FIX Latest; accepted here as a 4.4 extension
LastLiquidityInd: Final = 851
DiscretionInst: Final = 388
TrailingStopAmount: Final = 20001  # user-defined: trailing distance in price units
TrailingStopBps: Final = 20002  # user-defined: trailing distance in basis points
TrailingLimitOffset: Final = 20003  # user-defined: trailing stop-limit limit offset (price)
OrderCapacity: Final = 528

# --- market data and security list ---------------------------------------------------------------
MDReqID: Final = 262
SubscriptionRequestType: Final = 263
MarketDepth: Final = 264
MDUpdateType: Final = 265
AggregatedBook: Final = 266
NoMDEntryTypes: Final = 267
NoMDEntries: Final = 268
MDEntryType: Final = 269
MDEntryPx: Final = 270
MDEntrySize: Final = 271
MDEntryDate: Final = 272
MDEntryTime: Final = 273
MDUpdateAction: Final = 279
MDReqRejReason: Final = 281
MDEntryPositionNo: Final = 290
NumberOfOrders: Final = 346
NoRelatedSym: Final = 146
TradingSessionSubID: Final = 625
SecurityReqID: Final = 320
SecurityResponseID: Final = 322
SecurityRequestResult: Final = 560
SecurityListRequestType: Final = 559
TotNoRelatedSym: Final = 393
LastFragment: Final = 893
MinPriceIncrement: Final = 969
RoundLot: Final = 561
SecurityExchange: Final = 207
SecurityStatus: Final = 965

# --- MsgType (35) values ------------------------------------------------------------------------
MT_HEARTBEAT: Final = "0"
MT_TEST_REQUEST: Final = "1"
MT_RESEND_REQUEST: Final = "2"
MT_REJECT: Final = "3"
MT_SEQUENCE_RESET: Final = "4"
MT_LOGOUT: Final = "5"
MT_LOGON: Final = "A"
MT_EXECUTION_REPORT: Final = "8"
MT_ORDER_CANCEL_REJECT: Final = "9"
MT_NEW_ORDER_SINGLE: Final = "D"
MT_ORDER_CANCEL_REQUEST: Final = "F"
MT_ORDER_CANCEL_REPLACE_REQUEST: Final = "G"
MT_ORDER_STATUS_REQUEST: Final = "H"
MT_BUSINESS_MESSAGE_REJECT: Final = "j"
MT_ORDER_MASS_CANCEL_REQUEST: Final = "q"
MT_ORDER_MASS_CANCEL_REPORT: Final = "r"
MT_MARKET_DATA_REQUEST: Final = "V"
MT_MARKET_DATA_SNAPSHOT: Final = "W"
MT_MARKET_DATA_INCREMENTAL: Final = "X"
MT_MARKET_DATA_REQUEST_REJECT: Final = "Y"
MT_SECURITY_LIST_REQUEST: Final = "x"
MT_SECURITY_LIST: Final = "y"
MT_NEWS: Final = "B"

SESSION_MSG_TYPES: Final = frozenset(
    {
        MT_HEARTBEAT,
        MT_TEST_REQUEST,
        MT_RESEND_REQUEST,
        MT_REJECT,
        MT_SEQUENCE_RESET,
        MT_LOGOUT,
        MT_LOGON,
    }
)

# --- SessionRejectReason (373) ------------------------------------------------------------------
SRR_INVALID_TAG_NUMBER: Final = 0
SRR_REQUIRED_TAG_MISSING: Final = 1
SRR_TAG_NOT_DEFINED_FOR_MSG_TYPE: Final = 2
SRR_UNDEFINED_TAG: Final = 3
SRR_TAG_WITHOUT_VALUE: Final = 4
SRR_VALUE_INCORRECT: Final = 5
SRR_INCORRECT_DATA_FORMAT: Final = 6
SRR_SIGNATURE_PROBLEM: Final = 8
SRR_COMPID_PROBLEM: Final = 9
SRR_SENDING_TIME_ACCURACY: Final = 10
SRR_INVALID_MSG_TYPE: Final = 11
SRR_TAG_APPEARS_MORE_THAN_ONCE: Final = 13
SRR_TAG_OUT_OF_ORDER: Final = 14
SRR_REPEATING_GROUP_ORDER: Final = 15
SRR_INCORRECT_NUM_IN_GROUP: Final = 16
SRR_OTHER: Final = 99

# --- BusinessRejectReason (380) -----------------------------------------------------------------
BRR_OTHER: Final = 0
BRR_UNKNOWN_ID: Final = 1
BRR_UNKNOWN_SECURITY: Final = 2
BRR_UNSUPPORTED_MSG_TYPE: Final = 3
BRR_APPLICATION_NOT_AVAILABLE: Final = 4
BRR_CONDITIONALLY_REQUIRED_FIELD_MISSING: Final = 5
BRR_NOT_AUTHORIZED: Final = 6
BRR_THROTTLE: Final = 99  # "Other" with a Text saying which limit

# --- ExecType (150) / OrdStatus (39) ------------------------------------------------------------
EXEC_NEW: Final = "0"
EXEC_CANCELED: Final = "4"
EXEC_REPLACED: Final = "5"
EXEC_REJECTED: Final = "8"
EXEC_SUSPENDED: Final = "9"
EXEC_RESTATED: Final = "D"
EXEC_EXPIRED: Final = "C"
EXEC_TRADE: Final = "F"
EXEC_ORDER_STATUS: Final = "I"
EXEC_TRIGGERED: Final = "L"

ST_NEW: Final = "0"
ST_PARTIALLY_FILLED: Final = "1"
ST_FILLED: Final = "2"
ST_CANCELED: Final = "4"
ST_REPLACED: Final = "5"
ST_PENDING_CANCEL: Final = "6"
ST_REJECTED: Final = "8"
ST_SUSPENDED: Final = "9"
ST_PENDING_NEW: Final = "A"
ST_EXPIRED: Final = "C"

# --- Side (54), OrdType (40), TimeInForce (59) --------------------------------------------------
SIDE_BUY: Final = "1"
SIDE_SELL: Final = "2"

ORD_MARKET: Final = "1"
ORD_LIMIT: Final = "2"
ORD_STOP: Final = "3"
ORD_STOP_LIMIT: Final = "4"
ORD_MARKET_ON_CLOSE: Final = "5"
ORD_LIMIT_ON_CLOSE: Final = "B"
ORD_MARKET_IF_TOUCHED: Final = "J"
ORD_MARKET_WITH_LEFTOVER_AS_LIMIT: Final = "K"  # market-to-limit
ORD_PEGGED: Final = "P"

TIF_DAY: Final = "0"
TIF_GTC: Final = "1"
TIF_OPG: Final = "2"
TIF_IOC: Final = "3"
TIF_FOK: Final = "4"
TIF_GTD: Final = "6"
TIF_AT_THE_CLOSE: Final = "7"

# --- Market data --------------------------------------------------------------------------------
MD_BID: Final = "0"
MD_OFFER: Final = "1"
MD_TRADE: Final = "2"
MD_ACTION_NEW: Final = "0"
MD_ACTION_CHANGE: Final = "1"
MD_ACTION_DELETE: Final = "2"
SUB_SNAPSHOT: Final = "0"
SUB_SNAPSHOT_UPDATES: Final = "1"
SUB_UNSUBSCRIBE: Final = "2"
MDRR_UNKNOWN_SYMBOL: Final = "0"
MDRR_DUPLICATE_MDREQID: Final = "1"
MDRR_UNSUPPORTED_SUBSCRIPTION_TYPE: Final = "4"
MDRR_UNSUPPORTED_MARKET_DEPTH: Final = "5"
MDRR_UNSUPPORTED_MDUPDATETYPE: Final = "6"
MDRR_UNSUPPORTED_MDENTRYTYPE: Final = "8"
